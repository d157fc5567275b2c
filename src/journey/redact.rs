//! Redaction: secret values never leave the process in any form we can foresee.
//!
//! Each secret is registered with the encodings it commonly travels in (URL
//! form encoding, JSON string escaping, base64, and `user:secret` basic auth
//! is covered by base64 of the bare value only when aligned), and every text
//! that is stored, logged, printed or sent goes through `redact` first.

use std::borrow::Cow;

use base64::Engine;

/// What a redacted value is replaced with.
pub const MASK: &str = "***";

/// Shorter values would mask ordinary text; such a "secret" is a config smell
/// the loader could warn about, not something to hide by mangling output.
const MIN_SECRET_LEN: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = Self::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    /// Registers a secret and its encoded forms.
    pub fn add(&mut self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let json = serde_json::to_string(secret).unwrap_or_default();
        let forms = [
            secret.to_string(),
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            json.trim_matches('"').to_string(),
            b64.encode(secret),
            b64.encode(secret).trim_end_matches('=').to_string(),
            b64url.encode(secret),
        ];
        for form in forms {
            if form.len() >= MIN_SECRET_LEN && !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }

    pub fn redact_string(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_encoded_forms() {
        let r = Redactor::new(["p@ss word/1"]);
        assert_eq!(r.redact("pw=p@ss word/1"), "pw=***");
        assert_eq!(r.redact("pw=p%40ss+word%2F1"), "pw=***");
        let b64 = base64::engine::general_purpose::STANDARD.encode("p@ss word/1");
        assert_eq!(r.redact(&format!("Basic {b64}")), "Basic ***");
    }

    #[test]
    fn masks_json_escaped_form() {
        let r = Redactor::new(["a\"quote"]);
        let json = serde_json::json!({ "v": "a\"quote" }).to_string();
        assert!(!r.redact(&json).contains("quote"), "{}", r.redact(&json));
    }

    #[test]
    fn leaves_text_without_secrets_alone() {
        let r = Redactor::new(["topsecret", "ab"]);
        assert!(matches!(r.redact("nothing here ab"), Cow::Borrowed(_)));
    }
}
