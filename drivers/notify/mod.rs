//! Notifiers: where the lifecycle events (`starting`, `running`, `crashed`) go.
//! The core (`crate::lifecycle`) owns their order, timeouts, retries and the
//! wait at exit; a notifier makes one attempt at a time and says whether
//! another could succeed.

mod disabled;
#[cfg(feature = "notify-webhook")]
mod webhook;
