//! What a reload, or a start, moves: probes that kept their `id` but
//! changed name or component (pure functions of the two configurations,
//! or of the stored states and the configuration). The monitor carries
//! each one's state, current interval and incident over
//! ([`super::Monitor`]), so a rename publishes no recovery and a move
//! leaves no incident behind on a component that no longer fails.
//! (Heartbeat memory is kept by id, so it needs no carrying.)

use std::collections::HashSet;

use crate::config::Config;
use crate::store::ProbeState;

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

/// `moves` in an order that can be carried out one by one: when a move's
/// new name is the old name of another (names shifted, or swapped), each
/// such probe first steps aside to a name no configuration can hold, so
/// no state overwrites another. Pure.
pub fn untangled(moves: Vec<Move>) -> Vec<Move> {
    let froms: HashSet<&str> = moves.iter().map(|m| m.from.as_str()).collect();
    let tangled = moves
        .iter()
        .any(|m| m.renamed() && froms.contains(m.to.as_str()));
    if !tangled {
        return moves;
    }
    let aside = |name: &str| format!("\u{0}moving\u{0}{name}");
    let (first, then): (Vec<Move>, Vec<Move>) = moves
        .iter()
        .filter(|m| m.renamed())
        .map(|m| {
            let step_aside = Move {
                from: m.from.clone(),
                to: aside(&m.from),
                from_component: m.from_component.clone(),
                to_component: m.from_component.clone(),
            };
            let arrive = Move {
                from: aside(&m.from),
                ..m.clone()
            };
            (step_aside, arrive)
        })
        .unzip();
    let only_moved = moves.into_iter().filter(|m| !m.renamed());
    first.into_iter().chain(then).chain(only_moved).collect()
}

/// At a start: stored probe states whose probe, found by the stored `id`,
/// now has another name or component (renamed or moved while Lookout was
/// stopped), in `stored`'s order. A state whose id no probe has any more
/// is matched by name, unless another stored state claims that probe's
/// id: giving an existing probe an `id:` keeps its state.
pub fn at_start<'a>(
    stored: impl IntoIterator<Item = &'a ProbeState>,
    config: &Config,
) -> Vec<Move> {
    let stored: Vec<&ProbeState> = stored.into_iter().collect();
    let claimed: HashSet<&str> = stored.iter().map(|s| s.probe_id.as_str()).collect();
    stored
        .iter()
        .filter_map(|s| {
            let now = config
                .probes
                .iter()
                .find(|p| p.id == s.probe_id)
                .or_else(|| {
                    config
                        .probe(&s.probe)
                        .filter(|p| !claimed.contains(p.id.as_str()))
                })?;
            let m = Move {
                from: s.probe.clone(),
                to: now.name.clone(),
                from_component: s.component.clone(),
                to_component: now.component.clone(),
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

    fn mv(from: &str, to: &str) -> Move {
        Move {
            from: from.into(),
            to: to.into(),
            from_component: "a".into(),
            to_component: "a".into(),
        }
    }

    /// Carries `moves` out one by one on a map of name → state, as the
    /// store does (a move replaces whatever the new name held).
    fn carry(mut states: Vec<(String, String)>, moves: &[Move]) -> Vec<(String, String)> {
        for m in moves {
            let Some(i) = states.iter().position(|(n, _)| *n == m.from) else {
                continue;
            };
            let (_, state) = states.remove(i);
            states.retain(|(n, _)| *n != m.to);
            states.push((m.to.clone(), state));
        }
        states.sort();
        states
    }

    #[test]
    fn shifted_and_swapped_names_never_overwrite_a_state() {
        let states = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect()
        };
        let before = states(&[("login", "L"), ("login-v2", "V2"), ("x", "X")]);
        // Shifted: v2 becomes login, login becomes v1, in either order.
        for order in [
            vec![mv("login-v2", "login"), mv("login", "login-v1")],
            vec![mv("login", "login-v1"), mv("login-v2", "login")],
        ] {
            let done = carry(before.clone(), &untangled(order));
            assert_eq!(
                done,
                states(&[("login", "V2"), ("login-v1", "L"), ("x", "X")])
            );
        }
        // Swapped.
        let done = carry(
            before.clone(),
            &untangled(vec![mv("login", "login-v2"), mv("login-v2", "login")]),
        );
        assert_eq!(
            done,
            states(&[("login", "V2"), ("login-v2", "L"), ("x", "X")])
        );
        // Nothing tangled: left as it is.
        let plain = vec![mv("x", "y")];
        assert_eq!(untangled(plain.clone()), plain);
    }

    fn stored(probe: &str, id: &str, component: &str) -> ProbeState {
        let t = chrono::DateTime::UNIX_EPOCH;
        ProbeState {
            probe: probe.into(),
            probe_id: id.into(),
            component: component.into(),
            health: crate::evaluate::ProbeHealth::new(t),
            last_run_at: None,
            last_outcome: None,
            last_reason: None,
            last_failed_step: None,
            locations: Default::default(),
        }
    }

    #[test]
    fn a_start_finds_what_was_renamed_or_moved_while_stopped_by_the_stored_id() {
        let config = config(&format!(
            "  - {{ name: sign-in, id: login, component: a, {STEPS} }}\n  - {{ name: write, component: b, {STEPS} }}\n  - {{ name: read, id: reader, component: a, {STEPS} }}\n  - {{ name: login, id: other, component: a, {STEPS} }}\n"
        ));
        let rows = [
            // Renamed (same id): its state goes to the new name, although a
            // new probe took the old name.
            stored("login", "login", "a"),
            // Moved.
            stored("write", "write", "a"),
            // Given an id it did not have: still the same probe.
            stored("read", "read", "a"),
            // Gone: not a move (retired by the monitor).
            stored("gone", "gone", "a"),
        ];
        let found = at_start(&rows, &config);
        let pairs: Vec<(&str, &str, &str, &str)> = found
            .iter()
            .map(|m| {
                (
                    m.from.as_str(),
                    m.to.as_str(),
                    m.from_component.as_str(),
                    m.to_component.as_str(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [("login", "sign-in", "a", "a"), ("write", "write", "a", "b")]
        );
        // Nothing changed, nothing moves.
        let same = [
            stored("sign-in", "login", "a"),
            stored("write", "write", "b"),
        ];
        assert!(at_start(&same, &config).is_empty());
    }
}
