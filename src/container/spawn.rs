//! The parent side: clone the init, hand it the go-ahead, and learn whether the
//! command was executed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use super::init;
use super::plan::Plan;
use super::report::{ContainerError, Failure, Stage};
use crate::spec::RunSpec;

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

/// Clones the init and waits until it has executed the command (or failed to).
/// Must be called while psdock is single-threaded.
pub fn spawn(spec: &RunSpec, plan: &Plan) -> Result<Container, ContainerError> {
    let (report_r, report_w) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ContainerError::Clone)?;
    let (sync_r, sync_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ContainerError::Clone)?;
    // The init sends the master of its terminal over this before exec.
    let (tty_parent, tty_child) = match plan.tty {
        Some(_) => {
            use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
            let (p, c) = socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(ContainerError::Clone)?;
            (Some(p), Some(c))
        }
        None => (None, None),
    };
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
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
        return Err(ContainerError::Clone(Errno::last()));
    }
    if ret == 0 {
        drop(report_r);
        drop(sync_w);
        init::run(plan, report_w, sync_r, tty_child);
    }
    drop(report_w);
    drop(sync_r);
    drop(tty_child);
    let pid = Pid::from_raw(ret as i32);
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(ContainerError::Clone(e));
        }
    };
    let go = nix::unistd::write(&sync_w, &[1]);
    let report = read_report(&report_r);
    drop(sync_w);
    match (go, report) {
        (Ok(_), Ok(None)) => {
            let pty = match tty_parent
                .as_ref()
                .map(crate::stdio::pty::receive)
                .transpose()
            {
                Ok(pty) => pty,
                Err(e) => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Err(ContainerError::Tty(e));
                }
            };
            Ok(Container { pid, pidfd, pty })
        }
        (go, report) => {
            let _ = waitpid(pid, None);
            let failure = report?.ok_or(ContainerError::Clone(go.err().unwrap_or(Errno::EIO)))?;
            Err(explain(spec, failure))
        }
    }
}

fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
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

fn explain(spec: &RunSpec, f: Failure) -> ContainerError {
    let command = || spec.command[0].clone();
    match f.stage {
        Stage::Exec if matches!(f.errno, Errno::ENOENT | Errno::ENOTDIR) => {
            ContainerError::NotFound(command())
        }
        Stage::Exec => ContainerError::NotExecutable {
            command: command(),
            errno: f.errno,
        },
        Stage::Cwd => ContainerError::Cwd {
            path: spec.cwd.clone(),
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
