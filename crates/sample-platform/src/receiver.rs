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
    let kind = v["type"].as_str().unwrap_or("page");
    let title = v["incident"]["title"].as_str().unwrap_or("");
    let reason = v["incident"]["reason"].as_str().unwrap_or("");
    println!("📟 {kind}: {title} — {reason}");
    if let Some(ack) = v["ack_url"].as_str() {
        println!("   acknowledge: {ack}");
    }
    "ok"
}
