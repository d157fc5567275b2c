//! The outbox's names for Lookout's own mail, which no configured notifier
//! carries: the row `kind` of plain mail and the `notifier` lanes it goes
//! through. The store claims these lanes after pages; subscriber mail,
//! webhook subscriptions and the weekly digest enqueue into them; the
//! outbox worker sends them.

/// The outbox `kind` of plain mail (subscriber mail and digests): the
/// payload is a [`crate::notify::email::Mail`], not a page `Message`.
pub const MAIL_KIND: &str = "subscriber";

/// The outbox `notifier` lane of subscriber mail.
pub const SUBSCRIBERS: &str = "subscribers";

/// The outbox `notifier` lane of the weekly digest.
pub const DIGEST: &str = "report";

/// The outbox `kind` of subscriber webhook deliveries.
pub const WEBHOOK_KIND: &str = "subscriber_webhook";

/// Every webhook subscription's lane name starts so.
pub const WEBHOOK_PREFIX: &str = "webhook-subscription:";

/// The outbox lane (`notifier`) of webhook subscription `id`, e.g.
/// `webhook-subscription:7`.
pub fn webhook(id: i64) -> String {
    format!("{WEBHOOK_PREFIX}{id}")
}
