//! The demo's page receiver: prints each webhook page it gets, so a person
//! watching `lookout demo` sees the page, its reason and the ack link.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tokio::net::TcpListener;

/// Serves `POST /hook` on `listener` until the process ends, printing each
/// page (Lookout's webhook JSON: `type`, `incident.title`, `incident.reason`,
/// `ack_url`) on stdout.
pub async fn serve(listener: TcpListener) {
    let app = Router::new().route("/hook", post(print_page));
    let _ = axum::serve(listener, app).await;
}

/// Prints each page the demo receives: type, title and the ack link.
async fn print_page(body: Bytes) -> &'static str {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    println!("{}", line(&v));
    if let Some(ack) = v["ack_url"].as_str() {
        println!("   acknowledge: {ack}");
    }
    "ok"
}

/// One line for a page: `📟 incident.trigger: API disrupted — status 503`;
/// a resolve says after how long (`— resolved after 3m 20s`), an ack who
/// acknowledged; never a dash with nothing after it.
pub fn line(v: &serde_json::Value) -> String {
    let kind = v["type"].as_str().unwrap_or("page");
    let title = v["incident"]["title"].as_str().unwrap_or("");
    let reason = v["incident"]["reason"].as_str().filter(|r| !r.is_empty());
    let time = |k: &serde_json::Value| {
        k.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let detail = match kind {
        "incident.resolved" => match (time(&v["incident"]["opened_at"]), time(&v["sent_at"])) {
            (Some(a), Some(b)) => {
                let secs = (b - a).num_seconds().max(0) as u64;
                Some(format!(
                    "resolved after {}",
                    humantime::format_duration(std::time::Duration::from_secs(secs))
                ))
            }
            _ => Some("resolved".to_string()),
        },
        "incident.acknowledged" => v["acknowledged_by"]
            .as_str()
            .map(|by| format!("acknowledged by {by}")),
        _ => reason.map(str::to_string),
    };
    match detail {
        Some(d) => format!("📟 {kind}: {title} — {d}"),
        None => format!("📟 {kind}: {title}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resolve_says_how_long_and_nothing_dangles() {
        let resolved = json!({"type": "incident.resolved",
            "incident": {"title": "API disrupted", "reason": null, "opened_at": "2026-07-01T10:00:00+00:00"},
            "sent_at": "2026-07-01T10:03:20+00:00"});
        assert_eq!(
            line(&resolved),
            "📟 incident.resolved: API disrupted — resolved after 3m 20s"
        );
        let trigger = json!({"type": "incident.trigger",
            "incident": {"title": "API disrupted", "reason": "status: expected 200, got 503"}});
        assert!(line(&trigger).ends_with("— status: expected 200, got 503"));
        let bare = json!({"type": "incident.trigger", "incident": {"title": "API disrupted"}});
        assert!(!line(&bare).contains('—'), "{}", line(&bare));
    }
}
