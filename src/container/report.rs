//! What the child tells psdock when a step fails, and psdock's error for it.

use std::ffi::OsString;
use std::path::PathBuf;

use nix::errno::Errno;

/// The step of the child's setup that failed. The value crosses the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Stage {
    Parent = 1,
    Session,
    Stdio,
    Private,
    OpenBind,
    PivotRoot,
    SystemMount,
    ResolvConf,
    Bind,
    Mask,
    Tty,
    Hostname,
    Capabilities,
    User,
    NoNewPrivs,
    Cwd,
    Exec,
    Enter,
    Seccomp,
    Network,
    Init,
    OwnBinary,
    Cgroup,
    InitExec,
}

impl Stage {
    const ALL: [Stage; 24] = [
        Stage::Parent,
        Stage::Session,
        Stage::Stdio,
        Stage::Private,
        Stage::OpenBind,
        Stage::PivotRoot,
        Stage::SystemMount,
        Stage::ResolvConf,
        Stage::Bind,
        Stage::Mask,
        Stage::Tty,
        Stage::Hostname,
        Stage::Capabilities,
        Stage::User,
        Stage::NoNewPrivs,
        Stage::Cwd,
        Stage::Exec,
        Stage::Enter,
        Stage::Seccomp,
        Stage::Network,
        Stage::Init,
        Stage::OwnBinary,
        Stage::Cgroup,
        Stage::InitExec,
    ];

    fn from_u16(v: u16) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| *s as u16 == v)
    }

    pub fn what(self) -> &'static str {
        match self {
            Stage::Parent => "wait for psdock",
            Stage::Session => "start a session",
            Stage::Stdio => "set up stdio",
            Stage::Private => "make the mount namespace private",
            Stage::OpenBind => "open a bind-mount source",
            Stage::PivotRoot => "pivot_root into the rootfs",
            Stage::SystemMount => "mount /proc, /dev or /sys",
            Stage::ResolvConf => "bind-mount /etc/resolv.conf",
            Stage::Bind => "bind-mount",
            Stage::Mask => "mask /proc paths",
            Stage::Tty => "allocate the terminal",
            Stage::Hostname => "set the hostname",
            Stage::Capabilities => "drop capabilities",
            Stage::User => "switch user",
            Stage::NoNewPrivs => "set no_new_privs",
            Stage::Cwd => "enter the working directory",
            Stage::Exec => "execute the command",
            Stage::Enter => "enter the container",
            Stage::Cgroup => "join the container's cgroup",
            Stage::Seccomp => "install the system-call filter",
            Stage::Network => "join the container's network namespace",
            Stage::Init => "start the command under -init",
            Stage::OwnBinary => "run psdock's own binary",
            Stage::InitExec => "execute psdock-init, the init of -init",
        }
    }
}

/// A failed step: the stage, which item (a bind mount's index), and errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub index: u16,
    pub errno: Errno,
}

impl Failure {
    pub const LEN: usize = 8;

    pub fn new(stage: Stage, errno: Errno) -> Self {
        Self {
            stage,
            index: 0,
            errno,
        }
    }

    pub fn encode(self) -> [u8; Self::LEN] {
        let mut b = [0; Self::LEN];
        b[..2].copy_from_slice(&(self.stage as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&self.index.to_ne_bytes());
        b[4..].copy_from_slice(&(self.errno as i32).to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; Self::LEN]) -> Option<Self> {
        let stage = Stage::from_u16(u16::from_ne_bytes([b[0], b[1]]))?;
        let index = u16::from_ne_bytes([b[2], b[3]]);
        let errno = Errno::from_raw(i32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
        Some(Self {
            stage,
            index,
            errno,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("cannot create the container: {0}")]
    Clone(Errno),
    #[error("{}: command not found", .0.to_string_lossy())]
    NotFound(OsString),
    #[error("{}: cannot execute: {}", .command.to_string_lossy(), .errno.desc())]
    NotExecutable { command: OsString, errno: Errno },
    #[error("-cwd {}: {}", .path.display(), .errno.desc())]
    Cwd { path: PathBuf, errno: Errno },
    #[error("-cwd {}: refused: a /proc magic link or a symlink loop, which could lead out of the container", .0.display())]
    CwdMagicLink(PathBuf),
    #[error("-cwd {}: refused: outside the container's root", .0.display())]
    CwdOutside(PathBuf),
    #[error("-bind-mount {}: {}", .value, .errno.desc())]
    Bind { value: String, errno: Errno },
    #[error("container setup failed: cannot {what}: {}", .errno.desc())]
    Setup { what: &'static str, errno: Errno },
    #[error("container setup failed: malformed report from the container")]
    Report,
    #[error("cannot receive the container's terminal: {0}")]
    Tty(std::io::Error),
    #[error("{}: refused: it runs psdock's own binary in the container (a link to /proc/self/exe, or a script whose interpreter is one), where the container could write to it", .0.to_string_lossy())]
    OwnBinary(OsString),
    #[error("cannot inspect the container's first process: {0}")]
    Inspect(std::io::Error),
    #[error("cannot stop the container's first process at its exec: {}", .0.desc())]
    Trace(Errno),
    #[error("cannot create the container from a psdock with {0} threads (it must have one)")]
    Threads(u64),
    #[error("container setup failed: the container's first process {} before running the command", died(.0))]
    Died(nix::sys::wait::WaitStatus),
    #[error("-init: cannot load psdock-init, psdock's init program: {}", .0.desc())]
    InitImage(Errno),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

/// How a child ended, for [`ContainerError::Died`].
fn died(status: &nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        WaitStatus::Exited(_, code) => format!("exited with {code}"),
        other => format!("ended ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_round_trip() {
        for stage in Stage::ALL {
            let f = Failure {
                stage,
                index: 7,
                errno: Errno::EACCES,
            };
            assert_eq!(Failure::decode(&f.encode()), Some(f));
        }
        assert_eq!(Failure::decode(&[0; 8]), None);
    }
}
