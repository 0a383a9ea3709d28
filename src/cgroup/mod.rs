//! The container's cgroup, made only when a limit is asked for (`-memory`,
//! `-cpus`, ...): the one place that names `libcgroups`. The host's setup is
//! probed when a cgroup is made: cgroup v1 (legacy or hybrid, one hierarchy
//! per controller) or v2 (unified), and a limit whose controller the host
//! lacks is refused before anything exists.
//!
//! The cgroup is made and its limits applied before the container is cloned;
//! the init is moved into it while it is stopped at its exec, before the
//! command's first instruction (`container::spawn`). It is removed, after its
//! processes, when the run ends, and by `psdock-ls --prune` after a psdock
//! that was killed: the state record keeps its path.

mod error;
mod group;
mod host;
mod oom;
mod resources;
mod usage;

pub use error::CgroupError;
pub use group::{Cgroup, Planned};
pub use oom::Oom;
pub use usage::{counters, Counters};
