//! A service: the loop above one run. `-restart` decides whether an ended
//! attempt is followed by another ([`policy`]), after a wait that doubles
//! from `-restart-delay`'s MIN up to its MAX and starts over once a run has
//! lasted `-restart-reset` ([`policy::Backoff`]). Each attempt is one run of
//! `crate::run`'s once-path: a fresh overlay at the same ROOTFS, a fresh
//! spawn; the sink, the notifier, the signals and the state entry are made
//! once and live across attempts ([`serve`]).

pub mod policy;
mod serve;

pub use policy::{Backoff, Cause, Policy, RestartSpec};
pub use serve::serve;
