//! Redaction: secret values never leave the process, in any form they
//! travel in.
//!
//! Each secret becomes one pattern that matches it as given and in every
//! derived form: percent-encoded in any style (`%20` or `+` for a space,
//! upper- or lower-case hex, RFC 3986 and
//! `application/x-www-form-urlencoded` alike), JSON-escaped (`\"`, `\/`,
//! `\u00e9`), base64 (RFC 4648 standard and URL-safe alphabets, with and
//! without padding) of the secret alone and at each of the three offsets it
//! can sit at inside a longer encoded text (so `Basic base64(user:secret)`
//! is covered for any user). Every text that is stored, logged, printed or
//! sent goes through [`Redactor::redact`] first, and texts cut short are
//! masked *before* they are cut ([`Redactor::cut`]).

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine;
use regex::Regex;

/// What a redacted value is replaced with.
pub const MASK: &str = "***";

/// Shorter values would mask ordinary text; such a "secret" is a config smell
/// the loader could warn about, not something to hide by mangling output.
const MIN_SECRET_LEN: usize = 3;

/// Masks registered secrets. Cheap to clone (the compiled pattern is shared).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
    /// One matcher per secret (every form of it), in the order of `secrets`.
    patterns: Vec<Matcher>,
}

/// How one secret is found in a text.
#[derive(Debug, Clone)]
enum Matcher {
    /// Every form, literally, longest first: nothing to compile (secret
    /// captures make one per run).
    Literal(Vec<String>),
    /// Forms that vary per character (percent-encoding styles, escapes).
    Pattern(Regex),
}

impl Matcher {
    fn mask<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        match self {
            Matcher::Literal(forms) => {
                let mut out = text;
                for form in forms {
                    if out.contains(form.as_str()) {
                        out = Cow::Owned(out.replace(form.as_str(), MASK));
                    }
                }
                out
            }
            Matcher::Pattern(re) => match re.replace_all(&text, MASK) {
                Cow::Owned(s) => Cow::Owned(s),
                Cow::Borrowed(_) => text,
            },
        }
    }
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = Self::default();
        for s in secrets {
            if s.len() >= MIN_SECRET_LEN && !r.secrets.iter().any(|k| k == s) {
                r.secrets.push(s.to_string());
            }
        }
        r.compile();
        r
    }

    /// Registers a secret (e.g. a capture marked `secret: true`); only its
    /// own pattern is compiled.
    pub fn add(&mut self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        // Longest first, so a secret containing another is masked whole.
        let at = self
            .secrets
            .iter()
            .position(|s| s.len() < secret.len())
            .unwrap_or(self.secrets.len());
        self.secrets.insert(at, secret.to_string());
        self.patterns.insert(at, pattern(secret));
    }

    /// Keeps only the secrets `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut i = 0;
        while i < self.secrets.len() {
            if keep(&self.secrets[i]) {
                i += 1;
            } else {
                self.secrets.remove(i);
                self.patterns.remove(i);
            }
        }
    }

    fn compile(&mut self) {
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.patterns = self.secrets.iter().map(|s| pattern(s)).collect();
    }

    /// `text` with every form of every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for m in &self.patterns {
            out = m.mask(out);
        }
        out
    }

    pub fn redact_string(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }

    /// Masks, then cuts to at most `max` characters (with `…`): cutting
    /// first could leave the start of a secret that no longer matches.
    pub fn cut(&self, text: &str, max: usize) -> String {
        crate::human::truncate(&self.redact(text), max)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// One pattern matching `secret` in every form. A pattern too large for
/// the regex engine falls back to the plain and base64 forms, literally.
fn pattern(secret: &str) -> Matcher {
    if secret
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        // Tokens and keys are usually like this: percent-encoding and JSON
        // escaping leave them as they are, so their forms are a list of
        // literals.
        return Matcher::Literal(literal_forms(secret));
    }
    let mut forms = forms(secret);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    match regex::RegexBuilder::new(&forms.join("|"))
        .size_limit(64 << 20)
        .build()
    {
        Ok(re) => Matcher::Pattern(re),
        Err(_) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
            Matcher::Literal(vec![
                b64.clone(),
                b64.trim_end_matches('=').to_string(),
                secret.to_string(),
            ])
        }
    }
}

/// Every form of a secret made only of letters, digits, `-`, `.` and `_`,
/// longest first: itself, and its base64 encodings (alone and at each
/// alignment inside a longer text), those of the standard alphabet also
/// percent-encoded (`+`, `/`, `=` in either hex case).
fn literal_forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    for engine in engines {
        let whole = engine.encode(secret);
        let mut encoded = vec![whole.clone(), whole.trim_end_matches('=').to_string()];
        encoded.extend((0..3).filter_map(|o| base64_core(&engine, secret.as_bytes(), o)));
        for e in encoded {
            let pct = |case: fn(&str) -> String| {
                e.replace('+', &case("%2B"))
                    .replace('/', &case("%2F"))
                    .replace('=', &case("%3D"))
            };
            out.push(pct(|s| s.to_string()));
            out.push(pct(|s| s.to_lowercase()));
            out.push(e);
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// The regex alternatives that match `secret` in every form.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![textual(secret)];
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    for engine in engines {
        let whole = engine.encode(secret);
        out.push(textual(&whole));
        out.push(textual(whole.trim_end_matches('=')));
        for offset in 0..3 {
            if let Some(core) = base64_core(&engine, secret.as_bytes(), offset) {
                // Base64 may itself be percent-encoded (`%2B`, `%2F`, `%3D`).
                out.push(textual(&core));
            }
        }
    }
    out
}

/// The base64 characters fixed by `secret` alone when `offset` bytes
/// precede it inside a longer encoded text (and anything may follow).
fn base64_core(
    engine: &base64::engine::GeneralPurpose,
    secret: &[u8],
    offset: usize,
) -> Option<String> {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(secret);
    let encoded = engine.encode(&padded);
    // Characters touching the prefix: those of the first `offset` bytes,
    // rounded up (each char holds 6 bits).
    let skip = (offset * 8).div_ceil(6);
    // Trailing characters mixed with whatever follows: only full groups
    // of three bytes are fixed.
    let whole = (padded.len() / 3) * 4;
    let core = encoded.get(skip..whole)?;
    (core.len() >= 4).then(|| core.to_string())
}

/// A pattern matching `s` as given, percent-encoded in any style
/// (including `+` for space) and JSON-escaped, character by character.
/// Letters, digits, `-`, `.` and `_` are never encoded by either (RFC
/// 3986 and form encoding agree on them), so they match only as themselves: the pattern stays
/// small and compiles fast (secret captures compile one per run).
fn textual(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._".contains(c) {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        let mut alts = vec![regex::escape(&c.to_string())];
        let mut utf8 = [0u8; 4];
        let pct: String = c
            .encode_utf8(&mut utf8)
            .bytes()
            .map(|b| format!("%{}", hex_either_case(b)))
            .collect();
        alts.push(pct);
        let code = c as u32;
        if code <= 0xFFFF {
            let hex: String = format!("{code:04x}").chars().map(either_case).collect();
            alts.push(format!("\\\\u{hex}"));
        }
        match c {
            ' ' => alts.push("\\+".into()),
            '"' => alts.push("\\\\\"".into()),
            '\\' => alts.push("\\\\\\\\".into()),
            '/' => alts.push("\\\\/".into()),
            '\n' => alts.push("\\\\n".into()),
            '\r' => alts.push("\\\\r".into()),
            '\t' => alts.push("\\\\t".into()),
            _ => {}
        }
        let _ = write!(out, "(?:{})", alts.join("|"));
    }
    out
}

/// `b` as two hex digits matching upper or lower case, e.g. `2[fF]`.
fn hex_either_case(b: u8) -> String {
    format!("{b:02x}").chars().map(either_case).collect()
}

fn either_case(h: char) -> String {
    if h.is_ascii_alphabetic() {
        format!("[{}{}]", h.to_ascii_lowercase(), h.to_ascii_uppercase())
    } else {
        h.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    const SECRET: &str = "p@ss word/1+é\"x";

    /// Every form the issue names, for a secret with awkward characters.
    fn encoded_forms(secret: &str) -> Vec<String> {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let rfc3986 = percent_all(secret);
        let json = serde_json::to_string(secret).unwrap();
        let mut v = vec![
            secret.to_string(),
            form.clone(),
            lower_hex(&form),
            rfc3986.clone(),
            lower_hex(&rfc3986),
            unquote(&json),
            unquote(&json.replace('/', "\\/").replace('é', "\\u00e9")),
        ];
        for e in [STANDARD.encode(secret), STANDARD_NO_PAD.encode(secret)] {
            v.push(e);
        }
        for e in [URL_SAFE.encode(secret), URL_SAFE_NO_PAD.encode(secret)] {
            v.push(e);
        }
        for user in ["u", "us", "use", "prober"] {
            v.push(STANDARD.encode(format!("{user}:{secret}")));
            v.push(URL_SAFE_NO_PAD.encode(format!("{user}:{secret}")));
        }
        v
    }

    fn unquote(json: &str) -> String {
        json[1..json.len() - 1].to_string()
    }

    fn percent_all(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn lower_hex(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for _ in 0..2 {
                    if let Some(h) = chars.next() {
                        out.push(h.to_ascii_lowercase());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn masks_every_form_the_secret_travels_in() {
        let r = Redactor::new([SECRET]);
        for form in encoded_forms(SECRET) {
            let text = format!("before {form} after");
            let out = r.redact(&text);
            assert!(!out.contains(&form), "`{form}` left in `{out}`");
            assert!(out.contains(MASK), "`{form}` not masked: `{out}`");
        }
    }

    #[test]
    fn masks_before_cutting() {
        let key = "k".repeat(20) + &"Z9".repeat(15);
        let r = Redactor::new([key.as_str()]);
        let text = format!("{}{key}", "x".repeat(190));
        let cut = r.cut(&text, 200);
        assert!(!cut.contains("kkkk"), "{cut}");
    }

    #[test]
    fn leaves_text_without_secrets_alone() {
        let r = Redactor::new(["topsecret", "ab"]);
        assert!(matches!(r.redact("nothing here ab"), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn any_secret_is_masked_in_its_encoded_forms(secret in "[ -~é€]{8,40}") {
            let r = Redactor::new([secret.as_str()]);
            for form in encoded_forms(&secret) {
                let out = r.redact(&form).into_owned();
                proptest::prop_assert!(out.contains(MASK), "{form:?} -> {out:?}");
                proptest::prop_assert!(!out.contains(&secret), "{form:?} -> {out:?}");
            }
        }
    }
}
