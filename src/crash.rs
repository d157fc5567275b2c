//! The crash hook that crash-recovery tests start Lookout with: the pager,
//! the outbox worker and the monitor call [`CrashAt::reached`] at their
//! crash points; without `LOOKOUT_CRASH_AT` or `LOOKOUT_CRASH_PLAN` it does
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A test hook for crash-recovery tests. Started with
/// `LOOKOUT_CRASH_AT=<point>`, the process aborts (no destructors, no
/// graceful stop, like SIGKILL) the first time it reaches that point.
/// Points: `before_enqueue` and `after_enqueue` (pager, around the
/// escalation transaction), `mid_delivery` (worker, row claimed but not yet
/// sent) and `after_delivery` (sent, not yet marked delivered), and
/// `before_announce` (monitor, an incident's opening stored with its
/// announcement, subscriber mail not yet told).
///
/// Started with `LOOKOUT_CRASH_PLAN=<dir>` (the cluster tests, several
/// processes sharing one plan): `<dir>/plan` lists points, one a line,
/// each `<point>` or `<point>@<text>` (reached only when the delivery ids
/// at hand contain `<text>`, e.g. `mid_delivery@resolve`). A process
/// reaching a point aborts when it is the plan's first entry not yet taken
/// and it takes it (creating `<dir>/taken-<line>` exclusively), so the
/// entries are taken in order, each by one process. The plan is read at
/// each point, so a test may append entries as it goes.
///
/// Without either variable it does nothing.
#[derive(Debug, Clone, Default)]
pub struct CrashAt {
    at: Option<Arc<str>>,
    plan: Option<Arc<Path>>,
}

impl CrashAt {
    pub const VAR: &str = "LOOKOUT_CRASH_AT";
    pub const PLAN_VAR: &str = "LOOKOUT_CRASH_PLAN";

    /// Reads [`Self::VAR`] and [`Self::PLAN_VAR`] once; call where the
    /// component is built.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|p| !p.is_empty());
        Self {
            at: var(Self::VAR).map(Arc::from),
            plan: var(Self::PLAN_VAR).map(|d| Arc::from(PathBuf::from(d).as_path())),
        }
    }

    /// Aborts the process if `point` is the configured crash point (or the
    /// plan's next entry).
    pub fn reached(&self, point: &str) {
        self.reached_with(point, "");
    }

    /// [`CrashAt::reached`], with `detail` (the delivery ids at hand) for
    /// plan entries of the form `<point>@<text>`.
    pub fn reached_with(&self, point: &str, detail: &str) {
        if self.at.as_deref() == Some(point) {
            abort(Self::VAR, point);
        }
        if let Some(dir) = &self.plan
            && take_next(dir, point, detail)
        {
            abort(Self::PLAN_VAR, point);
        }
    }
}

fn abort(var: &str, point: &str) -> ! {
    eprintln!("{var}: {point}: aborting the process");
    std::process::abort();
}

/// Whether the plan in `dir`'s first entry not yet taken is `point` (with
/// its text in `detail`) and this process took it.
fn take_next(dir: &Path, point: &str, detail: &str) -> bool {
    let Ok(plan) = std::fs::read_to_string(dir.join("plan")) else {
        return false;
    };
    let Some((n, entry)) = plan
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .find(|(n, _)| !dir.join(format!("taken-{n}")).exists())
    else {
        return false;
    };
    let (wanted, text) = entry.split_once('@').unwrap_or((entry, ""));
    wanted == point
        && detail.contains(text)
        && std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(format!("taken-{n}")))
            .is_ok()
}
