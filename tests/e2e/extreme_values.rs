//! No configured value can crash, stall or flood (issue 13, item 5): a
//! property test feeds extreme durations (zero, a millisecond, a year,
//! `u64::MAX` seconds, `Duration::MAX`) and extreme instants through every
//! pure time function (schedule, escalation, heartbeat, uptime,
//! maintenance, retention, flapping, backoff, watchdog), and the service is
//! run with such values slipped past the loader.

use crate::support::{self, eventually};

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use lookout::config::{Heartbeat, Schedule, Secret};
use lookout::escalation::{self, Level, Policy};
use lookout::journey::Outcome;
use proptest::prelude::*;

/// Durations from nothing to the largest there is, edges first.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_millis(1)),
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(366 * 86_400)),
        Just(Duration::from_secs(9_000_000_000_000_000)),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
        (0u64..u64::MAX).prop_map(Duration::from_millis),
        (0u64..u64::MAX).prop_map(Duration::from_secs),
    ]
}

/// Instants from the start of representable time to its end.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp_millis();
    let max = DateTime::<Utc>::MAX_UTC.timestamp_millis();
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        Just(DateTime::<Utc>::UNIX_EPOCH),
        (0i64..4_102_444_800_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
        (min..max).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
    ]
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn probe_with(
    every: Duration,
    jitter: Duration,
    deadline: Duration,
    grace: Duration,
) -> lookout::config::Probe {
    let yaml = r#"version: 1
components: [{ id: api, name: API }]
probes:
  - name: p
    component: api
    every: 1s
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
"#;
    let config =
        lookout::config::parse(yaml, "t.yaml", std::path::Path::new("."), &|_| None).unwrap();
    let mut p = config.probes[0].clone();
    p.schedule = Schedule::Every(every);
    p.jitter = jitter;
    p.deadline = Some(deadline);
    p.heartbeat = Some(Heartbeat {
        token: Secret::new("0123456789abcdef"),
        grace,
        max_runtime: Some(grace),
    });
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn the_schedule_always_has_a_next_start_after_now(every in duration(), now in instant()) {
        let schedule = Schedule::Every(every);
        let phase = lookout::schedule::phase("p", every);
        prop_assert!(phase <= lookout::schedule::MAX_EVERY);
        // Within the next year (a longer `every` is taken as a year), unless
        // the end of time comes first: no value makes a probe never run.
        if now < DateTime::<Utc>::MAX_UTC - chrono::Duration::days(800) {
            let next = lookout::schedule::next_due("p", &schedule, now).expect("a next start");
            prop_assert!(next > now);
            prop_assert!(next - now <= chrono::Duration::days(366));
        } else {
            let _ = lookout::schedule::next_due("p", &schedule, now);
        }
        let _ = lookout::schedule::describe(&schedule);
    }

    #[test]
    fn escalation_never_panics_and_never_floods(
        after in duration(), remind in duration(), ack in duration(),
        epoch in instant(), now in instant(),
    ) {
        let policy = Policy {
            name: "p".into(),
            levels: vec![
                Level { after_ms: 0, notify: vec!["a".into()] },
                Level { after_ms: ms(after), notify: vec!["b".into()] },
            ],
            remind_every_ms: Some(ms(remind)),
            ack_timeout_ms: Some(ms(ack)),
            notify_on_resolve: true,
        };
        let fresh = escalation::State { epoch, level: None, last_page_at: None, acknowledged_at: None, cycle: 0 };
        let actions = escalation::due(&policy, &fresh, now);
        prop_assert!(actions.len() <= 2);
        let state = escalation::advance(&fresh, &actions, now);
        // Right after a page nothing more is due at the same instant: a
        // zero `remind_every` does not page every tick.
        prop_assert!(escalation::due(&policy, &state, now).is_empty() || state.level == Some(0));
        let acked = escalation::State { acknowledged_at: Some(epoch), ..state };
        let _ = escalation::due(&policy, &acked, now);
    }

    #[test]
    fn heartbeats_uptime_and_retention_take_any_duration(
        every in duration(), grace in duration(), jitter in duration(),
        anchor in instant(), now in instant(),
    ) {
        let probe = probe_with(every, jitter, grace, grace);
        let hb = probe.heartbeat.clone().unwrap();
        let mut memory = lookout::heartbeat::PingMemory::new(anchor);
        memory.started(anchor);
        let _ = lookout::heartbeat::due(&probe.schedule, &hb, &memory, now);
        if let Some(next) = lookout::heartbeat::next_deadline(&probe.schedule, &hb, &memory, now) {
            prop_assert!(next > now);
        }
        let stale = lookout::uptime::stale_after(&probe, now);
        prop_assert!(stale >= Duration::from_secs(300));
        let (runs, rollups) = lookout::retention::cutoffs(
            &lookout::config::model::Retention { runs: grace, rollups: every },
            now,
        );
        prop_assert!(runs <= now && rollups <= now);
    }

    #[test]
    fn maintenance_flapping_backoff_and_watchdog_take_any_duration(
        minutes in any::<u32>(), within in duration(), every in duration(),
        attempts in any::<u32>(), now in instant(),
    ) {
        let weekly = lookout::maintenance::Window::Weekly {
            weekdays: vec![Weekday::Mon],
            at: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            minutes,
            time_zone: "Europe/Berlin".into(),
        };
        let active = weekly.active_at(now);
        let _ = weekly.next_after(now);
        if minutes >= 7 * 24 * 60 && now.timestamp() > 0 && now.timestamp() < 4_102_444_800 {
            prop_assert!(active.is_some(), "a window a week long covers all time");
        }
        let mut rule = probe_with(every, every, every, every).alert;
        rule.flapping.within = within;
        rule.flapping.changes = 0;
        let h = lookout::evaluate::ProbeHealth::new(now);
        let (h, t) = lookout::evaluate::apply(&h, Outcome::Fail, &rule, now);
        let _ = lookout::evaluate::flapping(&h, t, &rule, now);
        let b = lookout::delivery::Backoff { base: every, cap: within, give_up_after: every };
        let _ = lookout::delivery::backoff(&b, attempts, 0.75, Some(within));
        let _ = lookout::monitor::retry_delay(attempts);
        let _ = lookout::watchdog::next_attempt(now, every);
    }
}

/// The service started with absurd values that slipped past the loader
/// stays up, ready and quiet: nothing panics, no probe floods, no reminder
/// every tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_survives_values_that_slipped_past_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(sample_platform::FaultSpec {
        endpoint: sample_platform::Endpoint::Login,
        mode: sample_platform::FaultMode::Error { status: 503 },
    });
    let receiver = support::Recorder::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", l.local_addr().unwrap());
    receiver.serve(l);
    let path = support::write_config(dir.path(), &platform.url, &hook, 9);
    let mut config = lookout::config::load(&path, &support::test_env).unwrap();
    let huge = Duration::from_secs(u64::MAX);
    // A second probe that would never run, or run every instant.
    let mut never = config.probes[0].clone();
    never.name = "never".into();
    never.schedule = Schedule::Every(Duration::from_secs(9_000_000_000_000_000));
    let mut always = config.probes[0].clone();
    always.name = "always".into();
    always.schedule = Schedule::Every(Duration::ZERO);
    for p in config.probes.iter_mut() {
        p.deadline = Some(huge);
        p.alert.flapping.within = huge;
    }
    config.probes[0].schedule = Schedule::Every(huge);
    // Probes added by hand: lookups fall back to a scan (the index is stale).
    config.probes.push(never);
    config.probes.push(always);
    let policy = config.escalation.get_mut("on-call").unwrap();
    policy.remind_every = Some(Duration::ZERO);
    policy.ack_timeout = Some(huge);
    policy.levels.push(lookout::config::model::EscalationLevel {
        after: huge,
        notify: vec!["hook".into()],
    });
    config.retention.runs = huge;
    config.retention.rollups = huge;
    let app = lookout::app::App::build(lookout::app::AppOptions {
        config,
        database: crate::support::database(&dir.path().join("lookout.db")).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: support::fast_tuning(),
        source: None,
        started: None,
    })
    .await
    .expect("builds");
    let url = app.url();
    let store = app.state().store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    // The probe every instant runs (at the schedule's floor, not a flood),
    // pages, and reminds no faster than once a second.
    eventually("a page", Duration::from_secs(30), || async {
        (!receiver.of_type("incident.trigger").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reminders = receiver.of_type("incident.reminder").len();
    assert!(reminders <= 4, "{reminders} reminders in about 3 s");
    let ready: serde_json::Value = reqwest::get(format!("{url}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let runs = store.probe_state("always").await.unwrap().expect("it ran");
    assert!(runs.last_run_at.is_some());
    assert!(!task.is_finished(), "the service is still running");
    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("stops")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}
