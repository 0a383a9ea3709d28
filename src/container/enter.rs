//! Entering a running container (psdock-exec): a child forked into the
//! container's PID namespace, which then joins its mount, UTS and IPC
//! namespaces and its root, and becomes the command exactly as the init does.
//!
//! The namespaces are joined through the init's pidfd (`setns(pidfd, flags)`,
//! Linux 5.8), which names that very process and joins all of them at once. The
//! PID namespace is joined by the parent, which only changes where its next
//! child lands: the child is a member of the container from its first
//! instruction, so it dies with the container's init like every other member.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::init;
use super::plan::ProcessPlan;
use super::report::{ContainerError, Failure, Stage};
use super::spawn::{launch, receive_tty, tty_channel, Container, Context};
use crate::proc::ProcId;
use crate::spec::ProcessSpec;
use crate::stdio::pty::Tty;

/// Starts `plan` inside the container whose init is `init` (opened as `pidfd`)
/// and waits until its command runs; with `tty`, on a terminal of the
/// container's own devpts, whose master the returned container holds. Must be
/// called while the caller is single-threaded. The caller's PID namespace for
/// children is its own again on return (a thread cannot be started while it
/// is another), so psdock can enter its container again and again (health
/// checks) and still start threads between.
pub fn enter(
    init: ProcId,
    pidfd: &OwnedFd,
    spec: &ProcessSpec,
    plan: &ProcessPlan,
    tty: Option<&Tty>,
) -> Result<Container, ContainerError> {
    let enter_failed = |errno| ContainerError::Setup {
        what: Stage::Enter.what(),
        errno,
    };
    // The container's root, opened while the host's view is still ours.
    let root = nix::fcntl::open(
        format!("/proc/{}/root", init.pid).as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(enter_failed)?;
    // SAFETY: a new descriptor we own.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    let (tty_parent, tty_child) = tty_channel(tty.is_some())?;
    let own = nix::fcntl::open(
        "/proc/self/ns/pid",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(enter_failed)?;
    // SAFETY: a new descriptor we own.
    let own = unsafe { OwnedFd::from_raw_fd(own) };
    setns(pidfd, libc::CLONE_NEWPID).map_err(enter_failed)?;
    let launched = launch(0, |report, lifeline| {
        let terminal = tty.zip(tty_child);
        init::finish(report, child(pidfd, &root, plan, &lifeline, terminal))
    });
    // Our own, always allowed: it is the one this process lives in.
    setns(&own, libc::CLONE_NEWPID).map_err(enter_failed)?;
    let mut entered = launched.map_err(|e| {
        e.explain(&Context {
            command: &spec.command[0],
            cwd: &spec.cwd,
            binds: &[],
        })
    })?;
    entered.pty = receive_tty(tty_parent)?;
    Ok(entered)
}

fn child(
    pidfd: &OwnedFd,
    root: &OwnedFd,
    plan: &ProcessPlan,
    lifeline: &OwnedFd,
    terminal: Option<(&Tty, OwnedFd)>,
) -> Result<std::convert::Infallible, Failure> {
    init::begin(plan, lifeline)?;
    let fail = |errno| Failure::new(Stage::Enter, errno);
    // Before the host's /sys is out of sight.
    init::join_cgroup(plan).map_err(fail)?;
    setns(
        pidfd,
        libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET,
    )
    .map_err(fail)?;
    // Joining a mount namespace puts us at its root mount, which need not be
    // where the container's root is: take the init's root itself.
    nix::unistd::fchdir(root.as_raw_fd()).map_err(fail)?;
    nix::unistd::chroot(".").map_err(fail)?;
    nix::unistd::chdir("/").map_err(fail)?;
    // As for the init: the terminal comes from the container's devpts, which
    // is the one at /dev/pts now that we are in its mount namespace and root.
    if let Some((tty, channel)) = terminal {
        crate::stdio::pty::open_in_container(tty, plan.uid, channel.as_raw_fd())
            .map_err(|errno| Failure::new(Stage::Tty, errno))?;
    }
    init::become_process(plan, lifeline)
}

fn setns(pidfd: &OwnedFd, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain system call on a descriptor we own.
    if unsafe { libc::setns(pidfd.as_raw_fd(), flags) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
