//! Starting the container's init: one `clone(2)` into new mount, PID, UTS and IPC
//! namespaces (the host network is shared, as in the original), then, in the
//! child, the mounts, pivot_root, hardening, user switch and exec.
//!
//! Everything the child needs is built into a [`Plan`] before the clone, and the
//! clone happens while psdock is still single-threaded (before the runtime
//! starts), so the child is a plain copy of one thread: PR_SET_PDEATHSIG is tied
//! to the main thread, which lives as long as psdock does. The child reports a
//! failure over a close-on-exec pipe; end-of-file on it means exec succeeded.

pub mod caps;
mod cwd;
mod enter;
mod init;
mod mounts;
mod plan;
mod reaper;
mod report;
pub mod seccomp;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod seccomp_bpf;
mod seccomp_default;
mod spawn;

pub use enter::enter;
pub use plan::{Plan, ProcessPlan};
pub use report::ContainerError;
pub use spawn::{spawn, Container};
