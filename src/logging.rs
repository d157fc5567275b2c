//! Logging: the tracing subscriber on stderr, and the mask every log line
//! passes through on its way out, so no secret reaches the logs in any
//! form at any level, libraries' debug output included: neither the
//! configuration's secrets nor values runs capture with `secret: true`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::redact::Redactor;

/// How long a captured secret stays masked after the last run holding it
/// ends: none. A minute (past the 30 s idle-connection lifetime) was
/// measured in `benches/runner.rs`: runs that each capture a fresh token
/// kept thousands masked at once and cost 70x the CPU per step; masking
/// while the run holds them costs nothing measurable. A pooled
/// connection's late log lines (idle expiry) can name a host built from a
/// captured secret after its run ended: not covered.
pub const CAPTURED_LINGER: Duration = Duration::ZERO;

/// The secrets the log writer masks: the configuration's, and those runs
/// capture with `secret: true` ([`LogMask::hold`]). Cheap to clone; set
/// the configuration's whenever the configuration in force changes
/// ([`LogMask::follow`]).
#[derive(Clone, Default)]
pub struct LogMask(Arc<Masks>);

#[derive(Default)]
struct Masks {
    config: ArcSwap<Redactor>,
    captured: Mutex<Captured>,
    /// What `captured` masks, for writers to read without the lock.
    captured_view: ArcSwap<Redactor>,
}

impl LogMask {
    /// Masks `redactor`'s secrets from now on.
    pub fn set(&self, redactor: &Redactor) {
        self.0.config.store(Arc::new(redactor.clone()));
    }

    /// Keeps the mask on the secrets of the configuration in force: checks
    /// `live` every second and takes its secrets when it changed (a reload).
    pub fn follow(&self, live: crate::config::Live) -> tokio::task::JoinHandle<()> {
        let mask = self.clone();
        tokio::spawn(async move {
            let mut current = live.get();
            mask.set(&current.redactor);
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let now = live.get();
                if !Arc::ptr_eq(&now, &current) {
                    mask.set(&now.redactor);
                    current = now;
                }
            }
        })
    }

    /// Masks `secret` (a value a run captured with `secret: true`) in every
    /// log line until the returned guard is dropped (the run ends; see
    /// [`CAPTURED_LINGER`]).
    pub fn hold(&self, secret: &str) -> HeldSecret {
        self.update(|c| c.hold(secret, Instant::now()));
        HeldSecret {
            mask: self.clone(),
            secret: secret.to_string(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Captured)) {
        let mut captured = self.0.captured.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut captured);
        self.0
            .captured_view
            .store(Arc::new(captured.redactor.clone()));
    }

    /// `text` with the secrets masked.
    pub fn apply(&self, text: &str) -> String {
        let text = self.0.config.load().redact(text).into_owned();
        self.0.captured_view.load().redact_string(text)
    }
}

/// A captured secret a run holds: masked in the logs while held, and for
/// [`CAPTURED_LINGER`] after it is dropped (none).
pub struct HeldSecret {
    mask: LogMask,
    secret: String,
}

impl Drop for HeldSecret {
    fn drop(&mut self) {
        let secret = std::mem::take(&mut self.secret);
        self.mask.update(|c| c.release(&secret, Instant::now()));
    }
}

/// The captured secrets masked now, each with how many runs hold it and
/// when the last let go. Time comes in as `now`, so the rule is testable.
#[derive(Default)]
struct Captured {
    held: Vec<Held>,
    redactor: Redactor,
}

struct Held {
    secret: String,
    runs: usize,
    released: Option<Instant>,
}

impl Captured {
    fn hold(&mut self, secret: &str, now: Instant) {
        self.prune(now);
        match self.held.iter_mut().find(|h| h.secret == secret) {
            Some(h) => {
                h.runs += 1;
                h.released = None;
            }
            None => {
                self.held.push(Held {
                    secret: secret.to_string(),
                    runs: 1,
                    released: None,
                });
                self.redactor.add(secret);
            }
        }
    }

    fn release(&mut self, secret: &str, now: Instant) {
        if let Some(h) = self.held.iter_mut().find(|h| h.secret == secret) {
            h.runs = h.runs.saturating_sub(1);
            if h.runs == 0 {
                h.released = Some(now);
            }
        }
        self.prune(now);
    }

    /// Forgets the secrets no run has held for [`CAPTURED_LINGER`].
    fn prune(&mut self, now: Instant) {
        let expired = |h: &Held| {
            h.released
                .is_some_and(|at| now.saturating_duration_since(at) >= CAPTURED_LINGER)
        };
        if !self.held.iter().any(expired) {
            return;
        }
        self.held.retain(|h| !expired(h));
        let keep: Vec<&str> = self.held.iter().map(|h| h.secret.as_str()).collect();
        self.redactor.retain(|s| keep.contains(&s));
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogMask {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine {
            config: self.0.config.load_full(),
            captured: self.0.captured_view.load_full(),
            buf: Vec::new(),
        }
    }
}

/// One log event, held until it is complete, masked, then written to
/// stderr in one write.
pub struct MaskedLine {
    config: Arc<Redactor>,
    captured: Arc<Redactor>,
    buf: Vec<u8>,
}

impl Write for MaskedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let masked = self.config.redact(&text);
        let masked = self.captured.redact(&masked);
        let _ = std::io::stderr().lock().write_all(masked.as_bytes());
    }
}

/// Installs the subscriber: `RUST_LOG` (default `info,sqlx=warn`), text or
/// JSON lines on stderr through `mask`. TLS libraries never log raw: their
/// failures reach the step's reason in words instead.
pub fn init(json: bool, mask: &LogMask) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    for quiet in [
        "rustls=off",
        "tokio_rustls=off",
        "rustls_platform_verifier=off",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colour codes only for a person at a terminal, never in files or
    // journals (NO_COLOR honoured too, no-color.org).
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(mask.clone());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_secret_is_masked_while_any_run_holds_it() {
        let t0 = Instant::now();
        let mut c = Captured::default();
        c.hold("tok-abc-123", t0);
        c.hold("tok-abc-123", t0); // a second run captures the same value
        assert_eq!(c.redactor.redact("x tok-abc-123 y"), "x *** y");
        c.release("tok-abc-123", t0 + Duration::from_secs(5));
        assert_eq!(
            c.redactor.redact("tok-abc-123"),
            "***",
            "one run still holds it"
        );
        c.hold("other-secret", t0 + Duration::from_secs(6));
        c.release("tok-abc-123", t0 + Duration::from_secs(7));
        assert_eq!(
            c.redactor.redact("tok-abc-123 other-secret"),
            "tok-abc-123 ***"
        );
        assert_eq!(c.held.len(), 1);
    }

    #[test]
    fn log_lines_are_masked_for_held_captured_secrets() {
        let mask = LogMask::default();
        mask.set(&Redactor::new(["config-secret"]));
        let held = mask.hold("captured-token-1");
        assert_eq!(mask.apply("config-secret captured-token-1"), "*** ***");
        drop(held);
        assert_eq!(
            mask.apply("captured-token-1"),
            "captured-token-1",
            "let go with the run"
        );
    }
}
