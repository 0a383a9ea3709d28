//! `-init`: PID 1 is a minimal init of psdock's own, with the command as its
//! child. It does tini's job and nothing else: it reaps every process that
//! ends in the container, forwards every signal it receives to the command
//! alone (as tini and `docker run --init` do; the terminal's own signals,
//! Ctrl-C among them, reach the command's whole process group, which is the
//! terminal's foreground one), and exits with the command's code, 128+N if a
//! signal N ended it. The rest of the container then ends with it.
//!
//! The container's first process starts as without `-init` (on psdock's
//! memory, until an exec), and sets up the container. Then, instead of
//! executing the command, it starts the command as its child and executes
//! `psdock-init` (src/container/pid1/psdock-init.rs), a 2 KiB program without
//! libc that psdock carries and hands over as a sealed memfd ([`image`]). So
//! PID 1 is neither psdock's binary nor a copy of its memory: nothing of
//! psdock's (its arguments, environment, memory or binary) is in the
//! container, and what `/proc/1/exe` leads to cannot be written to. No file
//! of the host or of the image is executed as PID 1 either. Before the exec,
//! while the command is still stopped at its own:
//! - PID 1 gives up every capability (its bounding set is the command's) and
//!   takes the command's user and no_new_privs, so that it could not lend the container
//!   anything even if it were reached; a process of the container can only
//!   send it signals, which it forwards (signals it cannot catch, SIGKILL and
//!   SIGSTOP, the kernel drops for a PID 1 from inside);
//! - every signal is blocked, so that none is acted on or lost before the
//!   init waits for them, and every descriptor goes at the exec, 0 to 2
//!   included (psdock learns that the exec succeeded from the end of the
//!   report pipe, as without `-init`);
//! - `psdock-init` makes itself non-dumpable again before it lets the command
//!   go.
//!
//! The command goes through the same steps as it does as PID 1 (capabilities,
//! user, no_new_privs, directory, clean signals, filter), and its exec is
//! checked for psdock's own binary the same way, with PID 1 as the tracer.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::plan::{Plan, ProcessPlan};
use super::report::{ContainerError, Failure, Stage};
use super::spawn::{self, Launch};
use super::{caps, init};

/// The program PID 1 becomes (built by build.rs; empty where it cannot be).
const PSDOCK_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/psdock-init"));

/// The pid `psdock-init` knows the command by: the first process PID 1 starts
/// in a new PID namespace.
const COMMAND: libc::pid_t = 2;

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

/// `psdock-init` in a sealed memfd, for PID 1 to execute: nothing can change
/// it once sealed, and PID 1 executes it through the descriptor, whatever its
/// root is by then. Close-on-exec: the command never holds it.
pub(super) fn image() -> Result<OwnedFd, ContainerError> {
    let fail = |e: Errno| ContainerError::InitImage(e);
    if PSDOCK_INIT.is_empty() {
        return Err(fail(Errno::ENOSYS));
    }
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC: where vm.memfd_noexec makes memfds non-executable by default
    // (Linux 6.3 on); older kernels refuse the flag.
    // SAFETY: a C string and flags; the result is a new descriptor we own.
    let mut fd = unsafe { libc::memfd_create(c"psdock-init".as_ptr(), flags | libc::MFD_EXEC) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c"psdock-init".as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(fail(Errno::last()));
    }
    // SAFETY: just created, owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut file, PSDOCK_INIT)
        .map_err(|e| fail(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: integer arguments on our own descriptor.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as _).map_err(fail)?;
    Ok(fd)
}

/// Starts the command, then becomes `psdock-init` (the memfd `exe`).
/// Returns only with the failure to report, before the command has run.
pub(super) fn start(plan: &Plan, exe: RawFd, lifeline: &OwnedFd) -> Result<Infallible, Failure> {
    // Every signal waits for the init's loop, from before the command exists;
    // the command unblocks them before its exec. The mask outlives the exec.
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
    // The command's bounding set, taken here so that the command inherits it
    // rather than drops it itself (each drop is a change of credentials);
    // the init keeps it (see `give_up`).
    caps::bound(plan.process.caps, plan.process.cap_last).map_err(at(Stage::Capabilities))?;
    // Dropped on any way out but the exec: the command is killed and reaped.
    let command = spawn::launch_on(spawn::ChildStack::Below, 0, |report, lifeline| {
        init::finish(report, command(plan, &lifeline))
    })
    .map_err(|e| match e {
        Launch::Child(f) => f,
        Launch::Parent(e) => Failure::new(Stage::Init, errno(&e)),
    })?;
    if command.pid.as_raw() != COMMAND {
        return Err(Failure::new(Stage::Init, Errno::EPROTO));
    }
    match spawn::runs_own_binary(command.pid, &command.pidfd) {
        Ok(Some(true)) => return Err(Failure::new(Stage::OwnBinary, Errno::EPERM)),
        Ok(_) => {}
        Err(e) => return Err(Failure::new(Stage::Init, errno(&e))),
    }
    give_up(&plan.process, lifeline)?;
    // Every descriptor goes at the exec, 0 to 2 and the memfd itself
    // included, and the report pipe with them: how psdock learns that the
    // exec succeeded. psdock-init never holds one, so nothing of psdock's can
    // be reached through it, even by a container allowed to ptrace.
    // SAFETY: a plain system call on descriptors of this process.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            0u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map_err(at(Stage::Init))?;
    let argv = [c"psdock-init".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    spawn::exec_reached();
    // SAFETY: NUL-terminated arrays of C strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Failure::new(Stage::InitExec, Errno::last()))
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
/// while the command is still stopped at its exec: every capability, root
/// unless the command is root, and any gain of privileges. The bounding set
/// stays the command's (taken before the command was started): with no
/// capability and no_new_privs, no exec could raise one from it, and
/// psdock-init executes nothing.
fn give_up(process: &ProcessPlan, lifeline: &OwnedFd) -> Result<(), Failure> {
    init::switch_user(process).map_err(at(Stage::User))?;
    caps::set(0).map_err(at(Stage::Capabilities))?;
    // SAFETY (prctl): integer arguments only. A change of credentials clears
    // PDEATHSIG: set anew. (Dumpable, which the change may set again, the
    // exec sets anyway; psdock-init clears it.)
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as _)
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
