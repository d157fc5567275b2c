//! Decoding `locations:` (the agents' places, issue 18) and a probe's
//! `locations: [..]` list against them.

use marked_yaml::Node;

use super::Ctx;
use crate::config::diagnostic::suggest;
use crate::config::model::{LOCAL, Location};

/// Keys of one `locations:` entry.
const LOCATION_KEYS: &[&str] = &["id", "name", "region"];

impl Ctx<'_> {
    /// `locations: [{ id: eu-west, name: Europe West, region: eu }]`.
    /// Ids are identifiers, unique, and never `local` (the server's own).
    pub(super) fn locations(&mut self, node: &Node) -> Vec<Location> {
        let Some(items) = self.sequence(node, "`locations`") else {
            return vec![];
        };
        let mut out: Vec<Location> = Vec::new();
        for item in items {
            let Some(map) = self.mapping(item, "a location") else {
                continue;
            };
            self.check_keys(map, LOCATION_KEYS, "a location");
            let Some(id_node) = self.required(map, "id", "a location") else {
                continue;
            };
            let Some(id) = self.identifier(id_node, "a location id") else {
                continue;
            };
            if id == LOCAL {
                self.error_at(
                    id_node,
                    format!("`{LOCAL}` is the server's own location"),
                    Some("it is always there; give agents other ids".into()),
                );
                continue;
            }
            if out.iter().any(|l| l.id == id) {
                self.error_at(id_node, format!("duplicate location id `{id}`"), None);
                continue;
            }
            let name = map.get_node("name").and_then(|n| self.string(n, "`name`"));
            let region = map
                .get_node("region")
                .and_then(|n| self.string(n, "`region`"));
            out.push(Location {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                region,
            });
        }
        out
    }

    /// A `locations: [..]` list (on a probe or in `defaults:`): each a
    /// declared location id or `local`, no repeats, not empty.
    pub(super) fn location_refs(&mut self, node: &Node, known: &[Location]) -> Option<Vec<String>> {
        let ids = self.strings(node, "`locations`")?;
        if ids.is_empty() {
            self.error_at(
                node,
                "`locations` is empty".into(),
                Some(format!("name at least one location, e.g. `[{LOCAL}]`")),
            );
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for id in ids {
            let at = self.item(node, &id);
            if id != LOCAL && !known.iter().any(|l| l.id == id) {
                let names = known.iter().map(|l| l.id.as_str()).chain([LOCAL]);
                let label = match suggest(&id, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "declare it under `locations:`".into(),
                };
                self.error_at(at, format!("unknown location `{id}`"), Some(label));
                ok = false;
            } else if out.contains(&id) {
                self.error_at(
                    at,
                    format!("duplicate location `{id}` in `locations`"),
                    None,
                );
                ok = false;
            } else {
                out.push(id);
            }
        }
        ok.then_some(out)
    }
}

/// Every declared location, then `local`: a probe's default.
pub(super) fn all(known: &[Location]) -> Vec<String> {
    known
        .iter()
        .map(|l| l.id.clone())
        .chain([LOCAL.to_string()])
        .collect()
}
