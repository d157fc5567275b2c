//! Signed acknowledgement links: an HMAC token bound to one incident, one
//! recipient and the single action "ack", valid until it expires.
//!
//! Mail scanners open every link with GET, so a token only ever authorises
//! the POST of the confirmation form, never the GET that renders it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only action a token can authorise today; part of the signed text so
/// a token minted for another purpose can never acknowledge.
const ACTION: &str = "ack";

#[derive(Clone)]
pub struct AckKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for AckKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKeys(***)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckClaim {
    pub incident_id: i64,
    pub recipient: String,
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this link is not a valid acknowledgement link")]
    Malformed,
    #[error("this link's signature does not match")]
    BadSignature,
    #[error("this link expired on {0}")]
    Expired(DateTime<Utc>),
}

impl AckKeys {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, text: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(text.as_bytes());
        mac
    }

    pub fn token(&self, incident_id: i64, recipient: &str, expires: DateTime<Utc>) -> String {
        let text = format!("{ACTION}:{incident_id}:{}:{recipient}", expires.timestamp());
        let sig = self.mac(&text).finalize().into_bytes();
        format!("{}.{}", B64.encode(text), B64.encode(sig))
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AckClaim, TokenError> {
        let (text, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let text = B64.decode(text).map_err(|_| TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let text = String::from_utf8(text).map_err(|_| TokenError::Malformed)?;
        // verify_slice checks the length first, then compares in constant time.
        self.mac(&text)
            .verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let mut parts = text.splitn(4, ':');
        let (Some(ACTION), Some(id), Some(exp), Some(recipient)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let incident_id = id.parse().map_err(|_| TokenError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        let expires = Utc
            .timestamp_opt(exp, 0)
            .single()
            .ok_or(TokenError::Malformed)?;
        if now > expires {
            return Err(TokenError::Expired(expires));
        }
        Ok(AckClaim {
            incident_id,
            recipient: recipient.to_string(),
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AckKeys {
        AckKeys::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn round_trips_a_token() {
        let now = Utc::now();
        let exp = now + chrono::Duration::hours(1);
        let token = keys().token(42, "ops-hook", exp);
        let claim = keys().verify(&token, now).unwrap();
        assert_eq!(claim.incident_id, 42);
        assert_eq!(claim.recipient, "ops-hook");
    }

    #[test]
    fn rejects_forged_truncated_and_expired_tokens() {
        let now = Utc::now();
        let token = keys().token(42, "ops-hook", now + chrono::Duration::hours(1));
        let other = AckKeys::new(b"another key entirely".to_vec());
        assert_eq!(other.verify(&token, now), Err(TokenError::BadSignature));
        let (text, _) = token.split_once('.').unwrap();
        assert_eq!(
            keys().verify(&format!("{text}."), now),
            Err(TokenError::BadSignature)
        );
        // Changing the incident id invalidates the signature.
        let forged_text = B64.encode(format!(
            "ack:43:{}:ops-hook",
            (now + chrono::Duration::hours(1)).timestamp()
        ));
        let sig = token.split_once('.').unwrap().1;
        assert_eq!(
            keys().verify(&format!("{forged_text}.{sig}"), now),
            Err(TokenError::BadSignature)
        );
        let late = now + chrono::Duration::hours(2);
        assert!(matches!(
            keys().verify(&token, late),
            Err(TokenError::Expired(_))
        ));
        assert_eq!(keys().verify("garbage", now), Err(TokenError::Malformed));
    }
}
