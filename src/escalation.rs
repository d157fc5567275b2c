//! Escalation timing: who is paged when, as a pure function of
//! (policy, state, now). The caller persists the new state and the pages
//! in one transaction, so a crash can neither lose nor repeat a page.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::EscalationPolicy;
use crate::message::MessageKind;

/// The policy as the incident started with it: stored with the incident so
/// that a configuration reload does not change an escalation under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub levels: Vec<Level>,
    pub remind_every_ms: Option<u64>,
    pub ack_timeout_ms: Option<u64>,
    pub notify_on_resolve: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub after_ms: u64,
    pub notify: Vec<String>,
}

impl From<&EscalationPolicy> for Policy {
    fn from(p: &EscalationPolicy) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            name: p.name.clone(),
            levels: p
                .levels
                .iter()
                .map(|l| Level {
                    after_ms: ms(l.after),
                    notify: l.notify.clone(),
                })
                .collect(),
            remind_every_ms: p.remind_every.map(ms),
            ack_timeout_ms: p.ack_timeout.map(ms),
            notify_on_resolve: p.notify_on_resolve,
        }
    }
}

impl Policy {
    /// The policy with reminders `factor` times further apart (flapping
    /// slows them: see `hold::reminder_factor`).
    pub fn reminding_slower(&self, factor: u32) -> Policy {
        Policy {
            remind_every_ms: self
                .remind_every_ms
                .map(|ms| ms.saturating_mul(u64::from(factor.max(1)))),
            ..self.clone()
        }
    }
}

/// Where an incident's paging stands.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Start of the current paging cycle: the opening, or when an ack expired.
    pub epoch: DateTime<Utc>,
    /// Highest level paged in this cycle.
    pub level: Option<u32>,
    pub last_page_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Paging cycles started over since the incident opened: 0 at the
    /// opening, one more at each expired ack and each rearm. Receivers that
    /// fold pages into one alert per key (PagerDuty's `dedup_key`) get a key
    /// per cycle, since a trigger under an acknowledged alert's key is
    /// swallowed (PagerDuty Events API v2, "Alert de-duplication").
    pub cycle: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Page every notifier of `level`.
    Page {
        level: u32,
        kind: MessageKind,
        notify: Vec<String>,
    },
    /// The acknowledgement expired while still failing: paging starts over.
    AckExpired { at: DateTime<Utc> },
}

/// The shortest reminder interval honoured: a `remind_every` below it
/// (0 s slipped past the loader) reminds this often, not every tick.
pub const MIN_REMIND: Duration = Duration::from_secs(1);

/// `t` plus `ms` milliseconds; `None` ("never") past representable time,
/// so no configured value can panic or wrap into the past.
fn plus(t: DateTime<Utc>, ms: u64) -> Option<DateTime<Utc>> {
    let ms = i64::try_from(ms).ok()?;
    t.checked_add_signed(chrono::Duration::try_milliseconds(ms)?)
}

/// What is due now, in order. Pure and total: any policy values (a level
/// `after` of centuries, a `remind_every` of zero) give an answer without
/// panicking; a time past representable time never comes.
pub fn due(policy: &Policy, state: &State, now: DateTime<Utc>) -> Vec<Action> {
    if let Some(acked) = state.acknowledged_at {
        let Some(timeout) = policy.ack_timeout_ms else {
            return vec![];
        };
        let Some(expires) = plus(acked, timeout) else {
            return vec![];
        };
        if now < expires {
            return vec![];
        }
        let restarted = State {
            epoch: expires,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: state.cycle.saturating_add(1),
        };
        let mut actions = vec![Action::AckExpired { at: expires }];
        actions.extend(due(policy, &restarted, now));
        return actions;
    }
    let mut actions = Vec::new();
    let first = state.level.map_or(0, |l| l as usize + 1);
    for (i, level) in policy.levels.iter().enumerate().skip(first) {
        if plus(state.epoch, level.after_ms).is_none_or(|at| now < at) {
            break;
        }
        actions.push(Action::Page {
            level: i as u32,
            kind: MessageKind::Trigger,
            notify: level.notify.clone(),
        });
    }
    let all_paged = first + actions.len() >= policy.levels.len();
    let min_remind = MIN_REMIND.as_millis() as u64;
    if let (true, Some(every), Some(last), Some(level)) = (
        actions.is_empty() && all_paged,
        policy.remind_every_ms,
        state.last_page_at,
        state.level,
    ) && plus(last, every.max(min_remind)).is_some_and(|at| now >= at)
        // A reload may have left fewer levels than were paged (see
        // `in_force`): the last one is reminded.
        && let Some(last_level) = policy.levels.len().checked_sub(1)
    {
        let level = (level as usize).min(last_level);
        actions.push(Action::Page {
            level: level as u32,
            kind: MessageKind::Reminder,
            notify: policy.levels[level].notify.clone(),
        });
    }
    actions
}

/// The policy an open incident pages under now. Its snapshot, taken when it
/// started paging, so a reload does not change an escalation under way;
/// but when a reload removed (or renamed) a notifier the snapshot names,
/// pages to it could only fail while the receivers configured now wait, so
/// `current` (the policy of the snapshot's name as configured now) takes
/// over, if there is one. `configured`: whether a notifier name is
/// configured now. Pure.
pub fn in_force(
    snapshot: &Policy,
    current: Option<Policy>,
    configured: impl Fn(&str) -> bool,
) -> std::borrow::Cow<'_, Policy> {
    let stale = snapshot
        .levels
        .iter()
        .flat_map(|l| &l.notify)
        .any(|n| !configured(n));
    match current {
        Some(current) if stale && current.name == snapshot.name => std::borrow::Cow::Owned(current),
        _ => std::borrow::Cow::Borrowed(snapshot),
    }
}

/// The paging clock while an incident is held (maintenance, silence) or
/// when a hold changes, at `now`: an incident that has paged nobody yet
/// keeps its clock at `now`, so when the hold ends paging starts from the
/// first level as if the incident had just opened; one that has paged
/// keeps its state, and its levels and reminders resume where they were.
pub fn clock_while_held(state: &State, now: DateTime<Utc>) -> State {
    match state.level {
        None => State {
            epoch: now,
            ..state.clone()
        },
        Some(_) => state.clone(),
    }
}

/// The state after `actions` were carried out at `now`.
pub fn advance(state: &State, actions: &[Action], now: DateTime<Utc>) -> State {
    let mut next = state.clone();
    for action in actions {
        match action {
            Action::AckExpired { at } => {
                next = State {
                    epoch: *at,
                    level: None,
                    last_page_at: None,
                    acknowledged_at: None,
                    cycle: next.cycle.saturating_add(1),
                };
            }
            Action::Page { level, .. } => {
                next.level = Some(next.level.map_or(*level, |l| l.max(*level)));
                next.last_page_at = Some(now);
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            name: "on-call".into(),
            levels: vec![
                Level {
                    after_ms: 0,
                    notify: vec!["hook".into()],
                },
                Level {
                    after_ms: 5 * 60_000,
                    notify: vec!["mail".into()],
                },
            ],
            remind_every_ms: Some(10 * 60_000),
            ack_timeout_ms: Some(30 * 60_000),
            notify_on_resolve: true,
        }
    }

    fn levels(actions: &[Action]) -> Vec<(u32, MessageKind)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Page { level, kind, .. } => Some((*level, *kind)),
                _ => None,
            })
            .collect()
    }

    /// Drives time minute by minute and records which pages went out when.
    fn simulate(p: &Policy, minutes: i64, ack_at: Option<i64>) -> Vec<(i64, u32, MessageKind)> {
        let t0 = Utc::now();
        let mut state = State {
            epoch: t0,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: 0,
        };
        let mut out = vec![];
        for m in 0..=minutes {
            let now = t0 + chrono::Duration::minutes(m);
            if ack_at == Some(m) {
                state.acknowledged_at = Some(now);
            }
            let actions = due(p, &state, now);
            out.extend(levels(&actions).into_iter().map(|(l, k)| (m, l, k)));
            state = advance(&state, &actions, now);
        }
        out
    }

    #[test]
    fn a_reload_that_removes_a_paged_notifier_hands_the_incident_the_policy_now_configured() {
        let snapshot = policy();
        let mut now_configured = policy();
        now_configured.levels[0].notify = vec!["pager".into()];
        now_configured.levels.truncate(1);
        // `hook` still configured: the snapshot stays.
        let kept = in_force(&snapshot, Some(now_configured.clone()), |_| true);
        assert_eq!(*kept, snapshot);
        // `hook` renamed to `pager`: the policy configured now pages.
        let only = |n: &str| n == "pager" || n == "mail";
        let taken = in_force(&snapshot, Some(now_configured.clone()), only);
        assert_eq!(*taken, now_configured);
        // No policy of that name any more: the snapshot (its failures go on
        // the timeline).
        assert_eq!(*in_force(&snapshot, None, only), snapshot);
        // Two levels were paged, one is left: the reminder goes to it.
        let t0 = Utc::now();
        let state = State {
            epoch: t0,
            level: Some(1),
            last_page_at: Some(t0),
            acknowledged_at: None,
            cycle: 0,
        };
        let actions = due(&taken, &state, t0 + chrono::Duration::minutes(10));
        assert_eq!(
            actions,
            [Action::Page {
                level: 0,
                kind: MessageKind::Reminder,
                notify: vec!["pager".into()]
            }]
        );
    }

    #[test]
    fn escalates_then_reminds_the_last_level() {
        use MessageKind::*;
        let pages = simulate(&policy(), 26, None);
        assert_eq!(
            pages,
            vec![
                (0, 0, Trigger),
                (5, 1, Trigger),
                (15, 1, Reminder),
                (25, 1, Reminder)
            ]
        );
    }

    #[test]
    fn ack_stops_paging_until_it_expires() {
        use MessageKind::*;
        let pages = simulate(&policy(), 40, Some(2));
        // Acked at minute 2; the ack expires at 32 and paging starts over.
        assert_eq!(
            pages,
            vec![(0, 0, Trigger), (32, 0, Trigger), (37, 1, Trigger)]
        );
    }

    #[test]
    fn overdue_levels_are_paged_in_order_after_a_restart() {
        let p = policy();
        let t0 = Utc::now();
        let state = State {
            epoch: t0,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: 0,
        };
        let actions = due(&p, &state, t0 + chrono::Duration::minutes(7));
        assert_eq!(
            levels(&actions),
            vec![(0, MessageKind::Trigger), (1, MessageKind::Trigger)]
        );
    }

    #[test]
    fn no_ack_timeout_means_an_ack_holds() {
        let mut p = policy();
        p.ack_timeout_ms = None;
        assert_eq!(simulate(&p, 120, Some(1)).len(), 1);
    }

    /// Held from the opening (maintenance) for 40 minutes: nobody is paged,
    /// the clock follows the hold, and when it ends the first level is
    /// paged at once and the second 5 minutes later, as for a new incident.
    #[test]
    fn a_hold_before_any_page_restarts_the_clock_when_it_ends() {
        let p = policy();
        let t0: DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
        let minute = |m: i64| t0 + chrono::Duration::minutes(m);
        let mut state = State {
            epoch: t0,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: 0,
        };
        for m in 0..=40 {
            state = clock_while_held(&state, minute(m));
        }
        assert_eq!(state.epoch, minute(40));
        assert_eq!(
            levels(&due(&p, &state, minute(40))),
            [(0, MessageKind::Trigger)]
        );
        state = advance(&state, &due(&p, &state, minute(40)), minute(40));
        assert!(due(&p, &state, minute(44)).is_empty());
        assert_eq!(
            levels(&due(&p, &state, minute(45))),
            [(1, MessageKind::Trigger)]
        );
    }

    /// Held after the first page (a silence): the clock stays, and the
    /// second level is due at its time from the opening once the hold ends.
    #[test]
    fn a_hold_after_a_page_keeps_the_clock() {
        let p = policy();
        let t0: DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
        let minute = |m: i64| t0 + chrono::Duration::minutes(m);
        let opened = State {
            epoch: t0,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: 0,
        };
        let paged = advance(&opened, &due(&p, &opened, t0), t0);
        assert_eq!(paged.level, Some(0));
        let held = clock_while_held(&paged, minute(3));
        assert_eq!(held, paged, "nothing moves");
        assert_eq!(
            levels(&due(&p, &held, minute(5))),
            [(1, MessageKind::Trigger)]
        );
    }

    #[test]
    fn each_expired_ack_starts_a_new_cycle_and_pages_pass_none_between() {
        let p = policy();
        let t0 = Utc::now();
        let minute = |m| t0 + chrono::Duration::minutes(m);
        let mut state = State {
            epoch: t0,
            level: None,
            last_page_at: None,
            acknowledged_at: None,
            cycle: 0,
        };
        // Acked at once every time it pages: each ack expires 30 min later
        // and starts a cycle; the cycle never moves backwards or skips.
        let mut cycles = vec![];
        for m in 0..=200 {
            let actions = due(&p, &state, minute(m));
            state = advance(&state, &actions, minute(m));
            if actions.iter().any(|a| matches!(a, Action::Page { .. })) {
                cycles.push(state.cycle);
                state.acknowledged_at = Some(minute(m));
            }
        }
        assert_eq!(cycles, (0..cycles.len() as u32).collect::<Vec<_>>());
        assert!(cycles.len() >= 6, "{cycles:?}");
        // A reminder or a level stays in its cycle.
        let reminded = advance(
            &state,
            &[Action::Page {
                level: 1,
                kind: MessageKind::Reminder,
                notify: vec![],
            }],
            minute(201),
        );
        assert_eq!(reminded.cycle, state.cycle);
    }
}
