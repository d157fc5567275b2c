//! The crash hook that crash-recovery tests start Lookout with: the pager,
//! the outbox worker and the monitor call [`CrashAt::reached`] at their crash points;
//! without `LOOKOUT_CRASH_AT` it does nothing.

use std::sync::Arc;

/// A test hook for crash-recovery tests: started with `LOOKOUT_CRASH_AT=<point>`,
/// the process aborts (no destructors, no graceful stop, like SIGKILL) the
/// first time it reaches that point. Points: `before_enqueue` and
/// `after_enqueue` (pager, around the escalation transaction), `mid_delivery`
/// (worker, row claimed but not yet sent) and `after_delivery` (sent, not yet
/// marked delivered), and `before_announce` (monitor, an incident's opening
/// stored with its announcement, subscriber mail not yet told). Without the
/// variable it does nothing.
#[derive(Debug, Clone, Default)]
pub struct CrashAt(Option<Arc<str>>);

impl CrashAt {
    pub const VAR: &str = "LOOKOUT_CRASH_AT";

    /// Reads [`Self::VAR`] once; call where the component is built.
    pub fn from_env() -> Self {
        Self(
            std::env::var(Self::VAR)
                .ok()
                .filter(|p| !p.is_empty())
                .map(Arc::from),
        )
    }

    /// Aborts the process if `point` is the configured crash point.
    pub fn reached(&self, point: &str) {
        if self.0.as_deref() == Some(point) {
            eprintln!("{}={point}: aborting the process", Self::VAR);
            std::process::abort();
        }
    }
}
