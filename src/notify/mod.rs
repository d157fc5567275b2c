//! TEMPORARY STUB.
mod message;
pub use message::{Message, MessageKind};
use crate::config::model::{Notifier, Smtp};
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{reason}")] Transient { reason: String, retry_after: Option<std::time::Duration> },
    #[error("{reason}")] Permanent { reason: String },
}
pub struct Notifiers;
impl Notifiers {
    pub fn new(_smtp: Option<Smtp>) -> Self { Self }
    pub async fn deliver(&self, _n: &str, _x: &Notifier, _m: &Message, _id: &str) -> Result<(), DeliveryError> { Ok(()) }
}
