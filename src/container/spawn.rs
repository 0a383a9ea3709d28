//! The parent side: clone the init, hand it the go-ahead, and learn whether the
//! command was executed.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use super::init;
use super::plan::Plan;
use super::report::{ContainerError, Failure, Stage};
use crate::spec::{BindMount, RunSpec};

/// A running container init, as psdock holds it.
#[derive(Debug)]
pub struct Container {
    pub pid: Pid,
    /// Signals and exit are handled through the pidfd, so a reused pid can never
    /// be hit by mistake.
    pub pidfd: OwnedFd,
    /// The master of the container's terminal, when the plan asked for one;
    /// held for as long as the container runs.
    pub pty: Option<OwnedFd>,
}

impl Drop for Container {
    /// A process still running when its holder lets go of it (an error between
    /// spawn and the end of supervision) must not outlive psdock's run, and must
    /// not be left a zombie: kill and reap it. After the supervisor has reaped
    /// it, both calls fail harmlessly (ESRCH, ECHILD): the pidfd cannot reach a
    /// process that reused the pid.
    fn drop(&mut self) {
        crate::proc::pidfd_send(&self.pidfd, libc::SIGKILL);
        const P_PIDFD: libc::idtype_t = 3;
        // SAFETY: zeroed siginfo is a valid buffer for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::waitid(
                P_PIDFD,
                self.pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
    }
}

/// Clones the init and waits until it has executed the command (or failed to).
/// Must be called while psdock is single-threaded.
pub fn spawn(spec: &RunSpec, plan: &Plan) -> Result<Container, ContainerError> {
    debug_assert_eq!(
        threads(),
        Some(1),
        "the container must be cloned from a single-threaded psdock"
    );
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    let (tty_parent, tty_child) = tty_channel(plan.tty.is_some())?;
    let mut container = launch(flags, |report, sync| {
        init::run(plan, report, sync, tty_child)
    })
    .map_err(|e| {
        e.explain(&Context {
            command: &spec.command[0],
            cwd: &spec.cwd,
            binds: &spec.binds,
        })
    })?;
    container.pty = receive_tty(tty_parent)?;
    Ok(container)
}

/// The channel over which a child sends the master of the terminal it opened
/// in the container's devpts before exec: psdock's end, the child's end.
pub(super) fn tty_channel(
    wanted: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>), ContainerError> {
    if !wanted {
        return Ok((None, None));
    }
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (p, c) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ContainerError::Clone)?;
    Ok((Some(p), Some(c)))
}

/// The master from [`tty_channel`]: already queued, since the child sent it
/// before exec. On failure, dropping the container kills and reaps the child.
pub(super) fn receive_tty(channel: Option<OwnedFd>) -> Result<Option<OwnedFd>, ContainerError> {
    channel
        .as_ref()
        .map(crate::stdio::pty::receive)
        .transpose()
        .map_err(ContainerError::Tty)
}

/// What a child's failure is reported against.
pub(super) struct Context<'a> {
    pub command: &'a OsStr,
    pub cwd: &'a Path,
    pub binds: &'a [BindMount],
}

/// Why [`launch`] failed: on the parent's side, or as the child reported.
pub(super) enum Launch {
    Parent(ContainerError),
    Child(Failure),
}

impl Launch {
    pub fn explain(self, context: &Context) -> ContainerError {
        match self {
            Launch::Parent(e) => e,
            Launch::Child(f) => explain(context, f),
        }
    }
}

/// Clones a child with `flags` (a fork, plus new namespaces if asked) that runs
/// `child`, hands it the go-ahead once its pidfd is held, and waits until it has
/// executed its command or reported why not. Must be called while the caller is
/// single-threaded.
pub(super) fn launch(
    flags: libc::c_int,
    child: impl FnOnce(OwnedFd, OwnedFd) -> std::convert::Infallible,
) -> Result<Container, Launch> {
    let parent = |e| Launch::Parent(ContainerError::Clone(e));
    let (report_r, report_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(parent)?;
    let (sync_r, sync_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(parent)?;
    // SAFETY: clone without CLONE_VM and with a null stack behaves like fork: the
    // child gets a copy of this (single) thread and its memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    };
    if ret < 0 {
        return Err(parent(Errno::last()));
    }
    if ret == 0 {
        drop(report_r);
        drop(sync_w);
        // `child` never returns: its result type has no value.
        #[allow(unreachable_code)]
        match child(report_w, sync_r) {}
    }
    drop(report_w);
    drop(sync_r);
    let pid = Pid::from_raw(ret as i32);
    let pidfd = match crate::proc::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(parent(e));
        }
    };
    let go = nix::unistd::write(&sync_w, &[1]);
    let report = read_report(&report_r);
    drop(sync_w);
    match (go, report) {
        (Ok(_), Ok(None)) => Ok(Container {
            pid,
            pidfd,
            pty: None,
        }),
        (go, report) => {
            let _ = waitpid(pid, None);
            let failure = report.map_err(Launch::Parent)?;
            Err(failure.map_or_else(|| parent(go.err().unwrap_or(Errno::EIO)), Launch::Child))
        }
    }
}

/// `None`: end-of-file with nothing written, the command was executed.
fn read_report(fd: &OwnedFd) -> Result<Option<Failure>, ContainerError> {
    let mut buf = [0u8; Failure::LEN];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(ContainerError::Report),
        }
    }
    match got {
        0 => Ok(None),
        Failure::LEN => Failure::decode(&buf)
            .map(Some)
            .ok_or(ContainerError::Report),
        _ => Err(ContainerError::Report),
    }
}

fn explain(spec: &Context, f: Failure) -> ContainerError {
    let command = || spec.command.to_owned();
    match f.stage {
        Stage::Exec if matches!(f.errno, Errno::ENOENT | Errno::ENOTDIR) => {
            ContainerError::NotFound(command())
        }
        Stage::Exec => ContainerError::NotExecutable {
            command: command(),
            errno: f.errno,
        },
        Stage::Cwd => ContainerError::Cwd {
            path: spec.cwd.to_owned(),
            errno: f.errno,
        },
        Stage::OpenBind | Stage::Bind => {
            let b = &spec.binds[(f.index as usize).min(spec.binds.len().saturating_sub(1))];
            let mode = if b.readonly { "ro" } else { "rw" };
            ContainerError::Bind {
                value: format!("{}:{}:{mode}", b.source.display(), b.target.display()),
                errno: f.errno,
            }
        }
        stage => ContainerError::Setup {
            what: stage.what(),
            errno: f.errno,
        },
    }
}

/// How many threads psdock has (field 20 of `/proc/self/stat`). Only debug
/// builds call it, but release builds type-check `debug_assert!` too.
fn threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: count fields after its closing parenthesis.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(17)?
        .parse()
        .ok()
}
