//! State records: one entry per running container under `/run/psdock/` (or
//! `$PSDOCK_STATE_DIR`), written by psdock, read by psdock-ls and psdock-exec,
//! and the reclaiming of what a psdock that was killed left behind.
//!
//! An entry is `<id>.json`, mode 0600 in a 0700 directory, always replaced
//! whole (a temporary file renamed over it), so a reader sees the old or the
//! new record, never half of one. It records psdock's and the init's pids with
//! their start times (a reused pid is never taken for ours) and what psdock
//! made on disk, which is all a reclaim may remove.

mod entry;
mod reclaim;
mod record;
mod store;

pub use entry::Entry;
pub use reclaim::{prune, reclaim, Pruned, ReclaimError};
pub use record::{Created, Record, Status};
pub use store::{dir, find, is_id, list, status, Listed, StateError};
