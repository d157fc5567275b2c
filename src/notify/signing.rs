//! Webhook signatures: Standard Webhooks (outbound and inbound) and
//! PagerDuty v3 (inbound). Comparisons are length-checked and constant-time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Receivers accept timestamps this far from their clock (the spec's ±5 min).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature")]
    Missing,
    #[error("signature does not match")]
    Mismatch,
    #[error("timestamp outside the allowed window")]
    Stale,
    #[error("malformed signature header")]
    Malformed,
}

/// The key bytes of a Standard Webhooks secret: `whsec_<base64>` decodes the
/// base64; any other string is used as raw bytes.
fn key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b| B64.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Equality that takes the same time wherever the inputs differ; a length
/// mismatch is refused first (an empty value never matches a real one).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(&key(secret));
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", B64.encode(m.finalize().into_bytes()))
}

/// Verifies a `webhook-signature` header (several space-separated
/// signatures allowed, e.g. during key rotation).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let key = key(secret);
    let mut any = false;
    for sig in signatures.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        any = true;
        let Ok(given) = B64.decode(b64) else { continue };
        let mut m = mac(&key);
        m.update(format!("{id}.{ts}.").as_bytes());
        m.update(body);
        // verify_slice rejects a wrong length before comparing in constant time.
        if m.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        SignatureError::Mismatch
    } else {
        SignatureError::Missing
    })
}

/// Verifies `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` over the raw body.
pub fn verify_pagerduty(secret: &str, header: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut any = false;
    for sig in header.split(',').map(str::trim) {
        let Some(hex) = sig.strip_prefix("v1=") else {
            continue;
        };
        any = true;
        let Some(given) = decode_hex(hex) else {
            continue;
        };
        let mut m = mac(secret.as_bytes());
        m.update(body);
        if m.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        SignatureError::Mismatch
    } else {
        SignatureError::Missing
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(sign(SECRET, ID, TS, BODY), EXPECTED);
        assert_eq!(
            verify(SECRET, ID, "1649367553", EXPECTED, BODY, TS + 10),
            Ok(())
        );
    }

    #[test]
    fn rejects_forged_empty_truncated_and_stale_signatures() {
        let ts = "1649367553";
        let forged = "v1,AAAAhDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert_eq!(
            verify(SECRET, ID, ts, forged, BODY, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, ID, ts, "v1,", BODY, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, ID, ts, "", BODY, TS),
            Err(SignatureError::Missing)
        );
        let truncated = &EXPECTED[..20];
        assert_eq!(
            verify(SECRET, ID, ts, truncated, BODY, TS),
            Err(SignatureError::Mismatch)
        );
        let late = TS + TOLERANCE_SECS + 1;
        assert_eq!(
            verify(SECRET, ID, ts, EXPECTED, BODY, late),
            Err(SignatureError::Stale)
        );
        // Rotation: a valid signature among others is accepted.
        let both = format!("{forged} {EXPECTED}");
        assert_eq!(verify(SECRET, ID, ts, &both, BODY, TS), Ok(()));
    }

    #[test]
    fn verifies_pagerduty_signatures() {
        let mut m = mac(b"pd-secret");
        m.update(b"{}");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let header = format!("v1=deadbeef,v1={hex}");
        assert_eq!(verify_pagerduty("pd-secret", &header, b"{}"), Ok(()));
        assert_eq!(
            verify_pagerduty("other", &header, b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_pagerduty("pd-secret", "", b"{}"),
            Err(SignatureError::Missing)
        );
    }
}
