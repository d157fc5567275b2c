//! The installation identity: a random id made with the database and kept in
//! it, so ids that leave Lookout (`webhook-id`, PagerDuty `dedup_key`, mail
//! `Message-ID`) never repeat across databases or installations.

use std::fmt;

/// 64 random bits as 16 lowercase hex digits, e.g. `3f9c0a7b12d4e6f8`.
///
/// Created on the first start against a database and read back on every
/// later one, so ids stay stable across restarts of one installation (a
/// receiver that deduplicates by id, as the Standard Webhooks spec asks,
/// still drops retries) while a recreated database or a second installation
/// paging the same receiver gets a different one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Installation(String);

impl Installation {
    /// A fresh random identity: 64 random bits as 16 hex digits. The store
    /// keeps the first one made for a database ([`crate::store::Store::installation`]).
    pub fn random() -> Self {
        let fresh: [u8; 8] = rand::random();
        Self(crate::human::hex(&fresh))
    }

    /// An identity for tests and tools that have no database.
    pub fn from_hex(id: &str) -> Self {
        Self(id.to_owned())
    }

    /// The id as text (16 hex digits for identities Lookout made).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id a receiver sees for the outbox's `delivery_id` (and the
    /// storage self-alert's): `{installation}-{delivery_id}`, e.g.
    /// `3f9c0a7b12d4e6f8-inc12-p1-trigger-hook`. It is the `webhook-id`
    /// (Standard Webhooks: the receiver's idempotency key) and the mail
    /// `Message-ID`'s local part, so it is the same for every retry and
    /// restart of one installation and never the same for two.
    pub fn scoped(&self, delivery_id: &str) -> String {
        format!("{}-{delivery_id}", self.0)
    }
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn kept_by_one_database_and_different_in_another() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&dir.path().join("a.db")).await.unwrap();
        let first = a.installation().await.unwrap();
        assert_eq!(first.as_str().len(), 16);
        assert!(first.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a.installation().await.unwrap(), first);
        a.close().await;
        let reopened = Store::open(&dir.path().join("a.db")).await.unwrap();
        assert_eq!(reopened.installation().await.unwrap(), first);
        let b = Store::open(&dir.path().join("b.db")).await.unwrap();
        let second = b.installation().await.unwrap();
        assert_ne!(second, first);
        assert_ne!(
            second.scoped("inc1-p1-trigger-hook"),
            first.scoped("inc1-p1-trigger-hook")
        );
        assert_eq!(first.scoped("x"), format!("{first}-x"));
    }
}
