//! What making, joining or removing a cgroup can fail on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A limit this host cannot apply: never ignored.
    #[error("-{flag}: this host cannot apply it: {why}")]
    Unsupported { flag: &'static str, why: String },
    #[error("cannot tell how cgroups are set up on this host: {0}")]
    Detect(String),
    #[error("cannot make the cgroup {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot apply the limits to the cgroup {}: {why}", .path.display())]
    Apply { path: PathBuf, why: String },
    #[error("cannot move pid {pid} into the cgroup {}: {why}", .path.display())]
    Join {
        pid: i32,
        path: PathBuf,
        why: String,
    },
    #[error("cannot watch {} for OOM kills: {source}", .path.display())]
    Watch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot kill the processes of the cgroup {}: {why}", .path.display())]
    Kill { path: PathBuf, why: String },
    #[error("cannot remove the cgroup {}: {why}", .path.display())]
    Remove { path: PathBuf, why: String },
}
