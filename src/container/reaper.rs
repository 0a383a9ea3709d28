//! `-init`: PID 1 is a minimal init of psdock's own, with the command as its
//! child. It does tini's job and nothing else: it reaps every process that
//! ends in the container, forwards every signal it receives to the command
//! alone (as tini and `docker run --init` do; the terminal's own signals,
//! Ctrl-C among them, reach the command's whole process group, which is the
//! terminal's foreground one), and exits with the command's code, 128+N if a
//! signal N ended it. The rest of the container then ends with it.
//!
//! The init is the child `spawn` cloned with a copy of psdock's memory (not
//! shared, unlike the default path: it keeps running after the command's
//! exec), and it never executes anything, so no host binary but psdock's own
//! is ever in the container, and that one only as `/proc/1/exe`. What keeps
//! that link and everything else of the init out of the container's reach
//! (the CVE-2019-5736 class):
//! - it is not dumpable (`init::begin`): `/proc/1/exe`, `/proc/1/mem`,
//!   `/proc/1/fd` and ptrace need CAP_SYS_PTRACE, which psdock refuses to
//!   give a container under `-init` (`SpecError::InitWithPtrace`);
//! - once the command runs it holds no descriptor at all, 0 to 2 included;
//! - before the command's first instruction (it is stopped at its exec) it has
//!   given up every capability, bounding set included, and taken the
//!   command's user and no_new_privs, so that it could not lend the container
//!   anything even if it were reached; a process of the container can only
//!   send it signals, which it forwards (signals it cannot catch, SIGKILL and
//!   SIGSTOP, the kernel drops for a PID 1 from inside);
//! - psdock's arguments and environment are blanked in its copy of them.
//!
//! It has no system-call filter of its own: without CAP_SYS_PTRACE nothing can
//! make it run anything but its loop, and one more filter to compile and
//! install would cost a fifth of its start-up.
//!
//! The command goes through the same steps as it does as PID 1 (capabilities,
//! user, no_new_privs, directory, clean signals, filter), and its exec is
//! checked for psdock's own binary the same way, with the init as the tracer.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::plan::{Plan, ProcessPlan};
use super::report::{ContainerError, Failure, Stage};
use super::spawn::{self, Launch};
use super::{caps, init};

fn check(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn at(stage: Stage) -> impl Fn(Errno) -> Failure {
    move |errno| Failure::new(stage, errno)
}

/// Starts the command, then serves as the container's init until it ends.
/// Returns only with the failure to report, before the command has run.
pub(super) fn start(
    plan: &Plan,
    lifeline: &OwnedFd,
    report: &OwnedFd,
) -> Result<Infallible, Failure> {
    forget_arguments();
    // Every signal waits for the loop, from before the command exists; the
    // command unblocks them before its exec.
    let all: u64 = !0;
    // SAFETY: the kernel's sigset, read during the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        )
    })
    .map_err(at(Stage::Init))?;
    let command = spawn::launch(0, |report, lifeline| {
        init::finish(report, command(plan, &lifeline))
    })
    .map_err(|e| match e {
        Launch::Child(f) => f,
        Launch::Parent(e) => Failure::new(Stage::Init, errno(&e)),
    })?;
    // Dropping `command` on the way out kills and reaps it.
    match spawn::runs_own_binary(command.pid, &command.pidfd) {
        Ok(Some(true)) => return Err(Failure::new(Stage::OwnBinary, Errno::EPERM)),
        Ok(_) => {}
        Err(e) => return Err(Failure::new(Stage::Init, errno(&e))),
    }
    give_up(&plan.process, lifeline)?;
    let pid = command.pid.as_raw();
    // Its pidfd goes with every other descriptor below; the loop waits by pid.
    std::mem::forget(command);
    let ready = [spawn::READY];
    // SAFETY: our own pipe, a local buffer; then every descriptor goes, the
    // report pipe with them (psdock reads READY, then its end).
    unsafe {
        libc::write(report.as_raw_fd(), ready.as_ptr().cast(), 1);
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    }
    // Only now is the command let go: from its first instruction on, the
    // init holds no descriptor. Nothing is left to report a failure on; a
    // command that cannot be let go is killed, and the init ends with it.
    if spawn::release(nix::unistd::Pid::from_raw(pid)).is_err() {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    serve(pid)
}

/// Blanks psdock's arguments and environment in the init's copy of its
/// memory, where anyone can read `/proc/1/cmdline` (and with CAP_SYS_ADMIN or
/// CAP_PERFMON, `/proc/1/environ`): they may carry the web hook's secret or a
/// token of the host's. Nothing reads them any more: the command's are in the
/// plan. The kernel put both in one block, the arguments first (glibc keeps
/// where they start); strings set later live elsewhere and are left alone.
fn forget_arguments() {
    unsafe extern "C" {
        static program_invocation_name: *const libc::c_char;
        static environ: *const *const libc::c_char;
    }
    // The block is at most what exec accepts (ARG_MAX, 2 MiB here).
    const LIMIT: usize = 4 << 20;
    // SAFETY: glibc's pointers to the strings exec left on the stack, read
    // and overwritten within their bounds, in this process's own copy of the
    // memory, which nothing else reads.
    unsafe {
        let start = program_invocation_name as usize;
        if start == 0 {
            return;
        }
        let mut end = start + std::env::args_os().map(|a| a.len() + 1).sum::<usize>();
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let at = *entry as usize;
            if at > start && at - start < LIMIT {
                end = end.max(at + libc::strlen(*entry) + 1);
            }
            entry = entry.add(1);
        }
        std::ptr::write_bytes(start as *mut u8, 0, end - start);
    }
}

/// The command's side, in the init's memory until its exec (`launch`): its
/// own process group, the terminal's foreground one (SIGTTOU is blocked, so
/// asking does not stop it), traced by the init for the check at its exec,
/// then the steps it takes as PID 1 without `-init`.
fn command(plan: &Plan, lifeline: &OwnedFd) -> Result<Infallible, Failure> {
    // SAFETY (all calls): integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as _)
        .map_err(at(Stage::Parent))?;
    init::parent_alive(lifeline)?;
    check(unsafe { libc::setpgid(0, 0) } as _).map_err(at(Stage::Session))?;
    if plan.tty.is_some() {
        check(unsafe { libc::tcsetpgrp(0, libc::getpid()) } as _).map_err(at(Stage::Tty))?;
    }
    if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } == 0 {
        spawn::stops_at_exec();
    }
    init::become_process(&plan.process, lifeline)
}

/// Everything a process of the container could take from the init, given up
/// while the command is still stopped at its exec: capabilities (bounding set
/// included), root unless the command is root, and any gain of privileges.
fn give_up(process: &ProcessPlan, lifeline: &OwnedFd) -> Result<(), Failure> {
    caps::bound(0, process.cap_last).map_err(at(Stage::Capabilities))?;
    init::switch_user(process).map_err(at(Stage::User))?;
    caps::set(0).map_err(at(Stage::Capabilities))?;
    // SAFETY (prctl): integer arguments only. A change of credentials clears
    // PDEATHSIG and may make the process dumpable again: both are set anew.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as _)
        .map_err(at(Stage::User))?;
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } as _)
        .map_err(at(Stage::User))?;
    init::parent_alive(lifeline)?;
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as _)
        .map_err(at(Stage::NoNewPrivs))
}

/// The errno behind a failure on the init's side, for the report.
fn errno(e: &ContainerError) -> Errno {
    match e {
        ContainerError::Clone(e) | ContainerError::Trace(e) => *e,
        ContainerError::Inspect(e) => Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        ContainerError::Threads(_) => Errno::EAGAIN,
        ContainerError::Died(_) => Errno::ECHILD,
        _ => Errno::EIO,
    }
}

/// The init's loop, in raw system calls: every
/// signal but SIGCHLD goes to the command; on SIGCHLD, every ended child is
/// reaped, and the command's end is the init's.
fn serve(command: libc::pid_t) -> ! {
    let all: u64 = !0;
    loop {
        // SAFETY: a zeroed siginfo is a valid buffer; the set is read only.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &all as *const u64,
                &mut info as *mut libc::siginfo_t,
                std::ptr::null::<libc::timespec>(),
                std::mem::size_of::<u64>(),
            )
        } as libc::c_int;
        match sig {
            libc::SIGCHLD => reap(command),
            // Interrupted (a stop and continue of the init): wait again.
            s if s <= 0 => {}
            // SAFETY: a signal to our own child, by pid: it cannot have been
            // reused, since only this loop reaps it.
            s => unsafe {
                libc::syscall(libc::SYS_kill, command, s);
            },
        }
    }
}

/// Reaps every child that has ended; leaves with the command's code once it
/// is among them.
fn reap(command: libc::pid_t) {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: the kernel writes the status into a local.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_wait4,
                -1,
                &mut status as *mut libc::c_int,
                libc::WNOHANG | libc::__WALL,
                std::ptr::null_mut::<libc::rusage>(),
            )
        } as libc::pid_t;
        if pid <= 0 {
            return;
        }
        if pid == command {
            let code = if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            };
            // SAFETY: leaves without running anything of psdock's.
            unsafe { libc::syscall(libc::SYS_exit_group, code) };
        }
    }
}
