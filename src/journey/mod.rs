//! What a journey is made of and what one run of it produced, as data: the
//! outcome, every step's result with its hops, timings and typed failure
//! kinds. The runner ([`crate::runner`]) makes these; the monitor, the
//! store, the status page and the reports read them.

pub mod result;
pub mod timing;
pub mod trace;

pub use result::{
    FailureKind, Hop, LOCAL, Outcome, Phase, RunResult, StepOutcome, StepResult, Trigger,
};
