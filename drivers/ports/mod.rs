//! Port probes: whether the container's command, or one of its descendants,
//! listens on the `-bind-port` TCP port. The core (`crate::lifecycle`) asks at
//! the probe's own interval; the process tree is walked by `crate::proctree`.

mod disabled;
#[cfg(feature = "ports-lsof")]
mod lsof;
#[cfg(feature = "ports-netlink")]
mod netlink;
#[cfg(feature = "ports-procfs")]
mod procfs;
