//! What a reload moves: probes that kept their `id` but changed name or
//! component (a pure function of the two configurations). The monitor
//! carries each one's state, current interval, heartbeat memory and
//! incident over ([`super::Monitor`]), so a rename publishes no recovery and
//! a move leaves no incident behind on a component that no longer fails.

use crate::config::Config;

/// One probe that a reload renamed or moved to another component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub from_component: String,
    pub to_component: String,
}

impl Move {
    pub fn renamed(&self) -> bool {
        self.from != self.to
    }

    pub fn moved(&self) -> bool {
        self.from_component != self.to_component
    }
}

/// Probes present in both `old` and `new` under one `id` whose name or
/// component differ, in `new`'s order.
pub fn moves(old: &Config, new: &Config) -> Vec<Move> {
    new.probes
        .iter()
        .filter_map(|p| {
            let before = old.probes.iter().find(|o| o.id == p.id)?;
            let m = Move {
                from: before.name.clone(),
                to: p.name.clone(),
                from_component: before.component.clone(),
                to_component: p.component.clone(),
            };
            (m.renamed() || m.moved()).then_some(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(probes: &str) -> Config {
        let yaml = format!(
            "version: 1\ncomponents: [{{ id: a, name: A }}, {{ id: b, name: B }}]\nprobes:\n{probes}"
        );
        crate::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None).unwrap()
    }

    const STEPS: &str = "every: 1s, steps: [{ id: s, get: \"http://127.0.0.1:9/\" }]";

    #[test]
    fn renames_and_moves_follow_the_id_and_the_rest_is_left_alone() {
        let old = config(&format!(
            "  - {{ name: login, component: a, {STEPS} }}\n  - {{ name: write, component: a, {STEPS} }}\n  - {{ name: gone, component: a, {STEPS} }}\n"
        ));
        let new = config(&format!(
            "  - {{ name: sign-in, id: login, component: a, {STEPS} }}\n  - {{ name: write, component: b, {STEPS} }}\n  - {{ name: fresh, component: a, {STEPS} }}\n"
        ));
        assert_eq!(
            moves(&old, &new),
            [
                Move {
                    from: "login".into(),
                    to: "sign-in".into(),
                    from_component: "a".into(),
                    to_component: "a".into()
                },
                Move {
                    from: "write".into(),
                    to: "write".into(),
                    from_component: "a".into(),
                    to_component: "b".into()
                },
            ]
        );
        // A probe renamed without an id is another probe: removed, added.
        let plain = config(&format!("  - {{ name: sign-in, component: a, {STEPS} }}\n"));
        assert!(moves(&old, &plain).is_empty());
        assert!(moves(&old, &old).is_empty());
    }
}
