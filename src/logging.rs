//! Logging: the tracing subscriber on stderr, and the mask every log line
//! passes through on its way out, so no secret reaches the logs in any
//! form at any level, libraries' debug output included.

use std::io::Write;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::redact::Redactor;

/// The secrets the log writer masks. Cheap to clone; set it whenever the
/// configuration in force changes ([`LogMask::follow`]).
#[derive(Clone, Default)]
pub struct LogMask(Arc<ArcSwap<Redactor>>);

impl LogMask {
    /// Masks `redactor`'s secrets from now on.
    pub fn set(&self, redactor: &Redactor) {
        self.0.store(Arc::new(redactor.clone()));
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

    /// `text` with the secrets masked.
    pub fn apply(&self, text: &str) -> String {
        self.0.load().redact(text).into_owned()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogMask {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine {
            mask: self.0.load_full(),
            buf: Vec::new(),
        }
    }
}

/// One log event, held until it is complete, masked, then written to
/// stderr in one write.
pub struct MaskedLine {
    mask: Arc<Redactor>,
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
        let masked = self.mask.redact(&text);
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
