//! PagerDuty Events API v2: trigger, acknowledge and resolve with one
//! `dedup_key` per incident and paging cycle, so PagerDuty sees one alert
//! per cycle of an incident. A trigger under the key of an alert that is
//! acknowledged is folded into it and notifies nobody (Events API v2,
//! "Alert de-duplication"), so the page after an expired ack (a new cycle)
//! goes under a new key; the resolve closes every cycle's key.
//! The key names the installation too (`lookout-{installation}-incident-{id}`),
//! so a recreated database or a second Lookout paging the same service
//! never folds its alerts into another's.

use serde_json::{Value, json};

use super::{DeliveryError, Message, MessageKind, classify};
use crate::installation::Installation;

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;

/// `lookout-{installation}-incident-{id}` for the first paging cycle, and
/// `lookout-{installation}-incident-{id}-cycle-{n}` for cycle `n` after
/// it (at most 255 characters, as PagerDuty requires: 16 hex digits, an
/// `i64` and a `u32` leave room to spare).
pub fn dedup_key(installation: &Installation, incident_id: i64, cycle: u32) -> String {
    match cycle {
        0 => format!("lookout-{installation}-incident-{incident_id}"),
        n => format!("lookout-{installation}-incident-{incident_id}-cycle-{n}"),
    }
}

/// The Lookout incident a `dedup_key` (PagerDuty's `incident_key`) names,
/// if this installation made it, whatever its cycle. Keys from before
/// installation ids (`lookout-incident-{id}`) are still understood.
pub fn incident_of(installation: &Installation, key: &str) -> Option<i64> {
    let ours = format!("lookout-{installation}-incident-");
    let rest = key
        .strip_prefix(&ours)
        .or_else(|| key.strip_prefix("lookout-incident-"))?;
    let id = match rest.split_once("-cycle-") {
        Some((id, cycle)) => {
            cycle.parse::<u32>().ok()?;
            id
        }
        None => rest,
    };
    id.parse().ok()
}

/// The Events API v2 body for `msg` under `dedup_key`.
pub fn body(routing_key: &str, dedup_key: &str, msg: &Message) -> Value {
    let action = match msg.kind {
        // An expired ack pages again: PagerDuty hears a trigger.
        MessageKind::Trigger | MessageKind::Reminder | MessageKind::AckExpired => "trigger",
        MessageKind::Acknowledged => "acknowledge",
        MessageKind::Resolved => "resolve",
    };
    if action != "trigger" {
        return json!({ "routing_key": routing_key, "dedup_key": dedup_key, "event_action": action });
    }
    let summary = match &msg.reason {
        Some(reason) => format!("{}: {reason}", msg.title),
        None => msg.title.clone(),
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Lookout",
        "client_url": msg.incident_url,
        "payload": {
            "summary": crate::human::truncate(&summary, SUMMARY_MAX),
            "source": msg.component_id,
            "severity": "critical",
            "timestamp": msg.opened_at.to_rfc3339(),
            "component": msg.component_name,
            "group": msg.component_id,
            "class": "journey",
            "custom_details": {
                "probes": msg.probes,
                "failing_step": msg.failing_step,
                "reason": msg.reason,
                "level": msg.level + 1,
            },
        },
        "links": links(msg),
    })
}

/// The trigger's `links`: the incident on the status page, and the failed
/// run on the operators' console when there is one.
fn links(msg: &Message) -> Value {
    let mut links =
        vec![json!({ "href": msg.incident_url, "text": "Incident on the status page" })];
    if let Some(run) = &msg.run_url {
        links.push(json!({ "href": run, "text": "Failed run (operators' console)" }));
    }
    Value::Array(links)
}

/// The keys `msg` speaks under: its cycle's, or for `Resolved` every
/// cycle's up to its own (oldest first), since each cycle's alert stays
/// open in PagerDuty until resolved.
pub fn keys(installation: &Installation, msg: &Message) -> Vec<String> {
    match msg.kind {
        MessageKind::Resolved => (0..=msg.cycle)
            .map(|c| dedup_key(installation, msg.incident_id, c))
            .collect(),
        _ => vec![dedup_key(installation, msg.incident_id, msg.cycle)],
    }
}

/// Sends `msg` as one event per key of [`keys`]; the delivery succeeds
/// when every event was accepted (a retry sends them all again: PagerDuty
/// takes a repeated resolve or acknowledge as a no-op).
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    routing_key: &str,
    installation: &Installation,
    msg: &Message,
) -> Result<(), DeliveryError> {
    for key in keys(installation, msg) {
        send_one(http, url, routing_key, &key, msg).await?;
    }
    Ok(())
}

async fn send_one(
    http: &reqwest::Client,
    url: &str,
    routing_key: &str,
    dedup_key: &str,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let body = body(routing_key, dedup_key, msg);
    let result = classify(http.post(url).json(&body).send().await).await;
    match result {
        // PagerDuty asks for minutes of patience on 429 when it gives no hint.
        Err(DeliveryError::Transient {
            reason,
            retry_after: None,
        }) if reason.contains("429") => Err(DeliveryError::Transient {
            reason,
            retry_after: Some(std::time::Duration::from_secs(60)),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolved(cycle: u32) -> Message {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Message {
            kind: MessageKind::Resolved,
            incident_id: 7,
            title: "t".into(),
            component_id: "api".into(),
            component_name: "API".into(),
            probes: vec![],
            failing_step: None,
            reason: None,
            opened_at: t,
            sent_at: t,
            level: 0,
            cycle,
            incident_url: "http://status.test/incidents/7".into(),
            ack_url: None,
            run_url: None,
            acknowledged_by: None,
            resolved_at: Some(t),
        }
    }

    proptest! {
        /// Every key names its incident back, whatever the cycle, and no
        /// two (incident, cycle) pairs share a key.
        #[test]
        fn every_cycles_key_names_its_incident_and_no_other(
            id in 0i64..=i64::MAX, cycle in any::<u32>(), other in any::<u32>(),
        ) {
            let me = Installation::from_hex("3f9c0a7b12d4e6f8");
            let key = dedup_key(&me, id, cycle);
            prop_assert!(key.len() <= 255);
            prop_assert_eq!(incident_of(&me, &key), Some(id));
            prop_assert_eq!(
                key == dedup_key(&me, id, other), cycle == other,
                "{} vs cycle {}", key, other
            );
            // Another installation's key is not ours.
            let them = Installation::from_hex("0000000000000001");
            prop_assert_eq!(incident_of(&them, &key), None);
        }
    }

    #[test]
    fn a_resolve_closes_every_cycles_alert_and_other_messages_one() {
        let me = Installation::from_hex("3f9c0a7b12d4e6f8");
        assert_eq!(
            keys(&me, &resolved(2)),
            [
                "lookout-3f9c0a7b12d4e6f8-incident-7",
                "lookout-3f9c0a7b12d4e6f8-incident-7-cycle-1",
                "lookout-3f9c0a7b12d4e6f8-incident-7-cycle-2",
            ]
        );
        let mut ack = resolved(2);
        ack.kind = MessageKind::Acknowledged;
        assert_eq!(
            keys(&me, &ack),
            ["lookout-3f9c0a7b12d4e6f8-incident-7-cycle-2"]
        );
        // Keys that only look like ours are refused.
        for bad in [
            "lookout-3f9c0a7b12d4e6f8-incident-7-cycle-",
            "lookout-3f9c0a7b12d4e6f8-incident-7-cycle-x",
            "lookout-3f9c0a7b12d4e6f8-incident-x",
            "lookout-3f9c0a7b12d4e6f8-incident-7-9",
        ] {
            assert_eq!(incident_of(&me, bad), None, "{bad}");
        }
        assert_eq!(incident_of(&me, "lookout-incident-7"), Some(7));
    }
}
