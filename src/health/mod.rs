//! Health checks, docker's `HEALTHCHECK`: a command run inside the running
//! container every interval, whose results make it `starting`, `healthy` or
//! `unhealthy`. The state is kept in the state record (psdock-ls) and sent to
//! the web hook when it changes; with `RunSpec::stop_when_unhealthy`, an
//! unhealthy container is stopped as on SIGTERM.
//!
//! Without a check none of this exists: no monitor, no source in the
//! supervisor's loop.

mod check;
mod monitor;
mod spec;
mod status;

pub use check::{Outcome, KEPT_OUTPUT, TIMED_OUT};
pub use monitor::Monitor;
pub use spec::{HealthError, HealthSpec};
pub use status::{CheckRecord, Health, HealthRecord, Tracker};
