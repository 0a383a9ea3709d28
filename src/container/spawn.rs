//! The parent side: clone the init and learn whether the command was executed.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::Signal;
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
    /// PID 1 is psdock's `-init`, which forwards every signal to the command:
    /// the PID-1 rule is not psdock's to apply.
    pub init: bool,
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
/// Fails if psdock has started a thread (see [`launch`]).
/// With a `cgroup`, the init is moved into it before the command's first
/// instruction.
pub fn spawn(
    spec: &RunSpec,
    plan: &Plan,
    cgroup: Option<&crate::cgroup::Cgroup>,
) -> Result<Container, ContainerError> {
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    let (tty_parent, tty_child) = tty_channel(plan.tty.is_some())?;
    let init_exe = plan.init.then(super::reaper::image).transpose()?;
    let exe = init_exe.as_ref().map(|fd| fd.as_raw_fd());
    let mut container = launch(flags, |report, sync| {
        init::run(plan, exe, report, sync, tty_child)
    })
    .map_err(|e| {
        e.explain(&Context {
            command: &spec.command[0],
            cwd: &spec.cwd,
            binds: &spec.binds,
        })
    })?;
    drop(init_exe);
    // While the init is stopped at its exec: nothing of the command has run
    // yet, so nothing escapes the limits. (On v2, clone3's CLONE_INTO_CGROUP
    // would spare the move; psdock clones with clone(2) and the stop is
    // there anyway.) Under `-init`, PID 1 executes psdock-init, not the
    // command: it has checked the command's exec itself, and joined the
    // cgroup before it started it (`Plan::cgroup_procs`).
    if plan.init {
        container.init = true;
    } else {
        let join = || match cgroup {
            Some(c) => c.join(container.pid.as_raw()).map_err(ContainerError::from),
            None => Ok(()),
        };
        refuse_own_binary(&container, &spec.command[0], join)?;
    }
    container.pty = receive_tty(tty_parent)?;
    Ok(container)
}

/// The init must not be psdock's own binary. A command, or the interpreter
/// of a script, that is `/proc/self/exe` (or any link to the init's own exe)
/// is resolved while the init is still psdock, so the exec would run the
/// host's binary as the container's init, dumpable, where a process of the
/// container could open it through `/proc/1/exe` and write to it once it is no
/// longer busy (the CVE-2019-5736 class).
///
/// The init asked to be traced by psdock (`init::setup`), so the exec stopped
/// it with SIGTRAP before the new program's first instruction: no process of
/// the container exists yet, and none can until psdock has looked at the
/// init's exe and let it go, or killed it. psdock-exec, which enters a
/// container where other processes already run, re-executes from a sealed view
/// of its binary instead (`crate::seal`); psdock does not need to, and its
/// start-up is spared that second exec.
///
/// The exec has succeeded by then (`launch` saw it), so an init that dies
/// before psdock lets it go (a SIGKILL at the stop) died running the command:
/// it is left unreaped, for the supervisor to report as the command's end.
///
/// `join` runs once the exe is known to be another, right before the init
/// is let go.
fn refuse_own_binary(
    container: &Container,
    command: &OsStr,
    join: impl FnOnce() -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    match runs_own_binary(container.pid, &container.pidfd)? {
        // Dropping the container kills and reaps the init.
        Some(true) => Err(ContainerError::OwnBinary(command.to_owned())),
        Some(false) => {
            join()?;
            release(container.pid)
        }
        // An init already gone: killed at the stop, or (without the stop,
        // psdock traced itself) the command already over.
        None => Ok(()),
    }
}

/// Whether the child `pid` of [`launch`] has executed psdock's own binary:
/// once it has stopped at its exec, if it asked to (then it stays stopped
/// until [`release`]); `None` if it is already gone, left unreaped.
pub(super) fn runs_own_binary(pid: Pid, pidfd: &OwnedFd) -> Result<Option<bool>, ContainerError> {
    use nix::sys::ptrace;
    if STOPS_AT_EXEC.load(Ordering::Relaxed) {
        loop {
            match exec_stop(pidfd).map_err(ContainerError::Trace)? {
                Some(libc::SIGTRAP) => break,
                // Another signal reached it first: let it through, and wait on.
                Some(sig) => {
                    ptrace::cont(pid, Signal::try_from(sig).ok()).map_err(ContainerError::Trace)?
                }
                None => return Ok(None),
            }
        }
    }
    let inode = |path: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| (m.dev(), m.ino()))
    };
    let ours = inode("/proc/self/exe").map_err(ContainerError::Inspect)?;
    match inode(&format!("/proc/{pid}/exe")) {
        Ok(theirs) => Ok(Some(theirs == ours)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(ContainerError::Inspect(e)),
    }
}

/// Lets the child checked by [`runs_own_binary`] run its command. One killed
/// at the stop since is the command's end, as above.
pub(super) fn release(pid: Pid) -> Result<(), ContainerError> {
    if STOPS_AT_EXEC.load(Ordering::Relaxed) {
        match nix::sys::ptrace::detach(pid, None) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(ContainerError::Trace(e)),
        }
    }
    Ok(())
}

/// The signal that stopped the traced init, or `None` once it has ended. An
/// end is only looked at (WNOWAIT), so that the supervisor reaps it and
/// reports it as the command's; a stop is consumed by resuming or detaching.
fn exec_stop(pidfd: &OwnedFd) -> Result<Option<i32>, Errno> {
    const P_PIDFD: libc::idtype_t = 3;
    loop {
        // SAFETY: zeroed siginfo is a valid buffer for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT | libc::__WALL;
        // SAFETY: `info` outlives the call; the pidfd is the caller's.
        let r = unsafe { libc::waitid(P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, flags) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        // SAFETY: waitid filled in a child status.
        let status = unsafe { info.si_status() };
        return Ok((info.si_code == libc::CLD_TRAPPED).then_some(status));
    }
}

/// Set by the init (whose memory is psdock's until exec) once it is traced
/// by psdock, so that its exec will stop it.
static STOPS_AT_EXEC: AtomicBool = AtomicBool::new(false);

/// Called by the init once `PTRACE_TRACEME` has succeeded.
pub(super) fn stops_at_exec() {
    STOPS_AT_EXEC.store(true, Ordering::Relaxed);
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

/// Clones a child with `flags` (new namespaces, if asked) that runs `child`,
/// and waits until it has executed its command or reported why not.
///
/// The child is cloned the way `posix_spawn` does it: it shares this
/// process's memory, on a stack of its own, while this process sleeps until
/// the child has called exec or exited (CLONE_VM | CLONE_VFORK). A fork would
/// copy the page tables, then fault in a copy of every page either side
/// writes to, and the exec would tear all of it down again: together more
/// than the rest of the child's set-up (0.3 to 0.5 ms a run here).
///
/// Sharing memory is sound under two conditions, both held here rather than
/// left to callers:
/// - No other thread runs while the child does: one could hold a lock (the
///   allocator's) that the child then waits for forever, or change memory
///   under it. Checked on every call, in release builds too: a second thread
///   is psdock's error, not a hang.
/// - Nothing is freed twice: `child` and what it captures are never dropped
///   on this side (`ManuallyDrop`), so whatever the child consumes, or frees
///   before exec, stays the child's. What the child allocates is left to it (a
///   few KiB, leaked once per container).
///
/// A child that dies before it reaches exec (killed, or crashed) is reported as
/// such, not as a command that ran. The pidfd comes with the clone
/// (CLONE_PIDFD).
pub(super) fn launch<F>(flags: libc::c_int, child: F) -> Result<Container, Launch>
where
    F: FnOnce(OwnedFd, OwnedFd) -> std::convert::Infallible,
{
    launch_on(ChildStack::Mapped, flags, child)
}

/// Where the child of [`launch_on`] runs.
pub(super) enum ChildStack {
    /// A stack mapped for it, unmapped once it has exec'd.
    Mapped,
    /// The caller's own stack, below the caller's frames, which the child
    /// cannot reach while the caller sleeps: for a caller that runs on a
    /// [`Stack`] of [`launch`] (the container's first process starting
    /// `-init`'s command), which has most of its megabyte free. Spares the
    /// mapping, its page faults and the unmapping.
    Below,
}

/// [`launch`], with the child's stack chosen.
pub(super) fn launch_on<F>(
    stack: ChildStack,
    flags: libc::c_int,
    child: F,
) -> Result<Container, Launch>
where
    F: FnOnce(OwnedFd, OwnedFd) -> std::convert::Infallible,
{
    let parent = |e| Launch::Parent(ContainerError::Clone(e));
    let child = std::mem::ManuallyDrop::new(child);
    match threads() {
        Ok(1) => {}
        Ok(n) => return Err(Launch::Parent(ContainerError::Threads(n))),
        Err(e) => return Err(parent(e)),
    }
    let (report_r, report_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(parent)?;
    // The child's lifeline: this process holds the write end, never writes to
    // it, and keeps it until the child has executed its command.
    let (lifeline_r, lifeline_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(parent)?;
    let mapped = match stack {
        ChildStack::Mapped => Some(Stack::new().map_err(parent)?),
        ChildStack::Below => None,
    };
    // Below: the child's frames start this far under the address of a local
    // of this frame, clear of it and of the calls made from here, aligned as
    // the ABI wants.
    let below = |local: *const u8| {
        ((local as usize).saturating_sub(Stack::SEPARATION) & !15) as *mut libc::c_void
    };
    let start = Start {
        child,
        report: report_w,
        lifeline: lifeline_r,
        close: [report_r.as_raw_fd(), lifeline_w.as_raw_fd()],
    };
    EXEC_REACHED.store(false, Ordering::Relaxed);
    STOPS_AT_EXEC.store(false, Ordering::Relaxed);
    // SAFETY: PR_GET_DUMPABLE takes no pointer.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the child runs `start_child` on its own stack and only reads
    // `start`, which outlives it: this process sleeps until it has exec'd or
    // exited. No other thread exists (checked
    // above). The kernel writes the pidfd into `pidfd`.
    let ret = unsafe {
        libc::clone(
            start_child::<F>,
            mapped
                .as_ref()
                .map_or_else(|| below((&raw const pidfd).cast()), Stack::top),
            flags | libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            std::ptr::from_ref(&start).cast_mut().cast(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    let clone_errno = Errno::last();
    drop(mapped);
    // The child cleared it on the memory it shared with us (init::begin).
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable, 0, 0, 0) };
    let Start {
        report: report_w,
        lifeline: lifeline_r,
        ..
    } = start;
    drop(report_w);
    drop(lifeline_r);
    if ret < 0 {
        return Err(parent(clone_errno));
    }
    let pid = Pid::from_raw(ret);
    // SAFETY: CLONE_PIDFD gave us this descriptor, and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let report = read_report(&report_r);
    drop(lifeline_w);
    let ran = matches!(report, Ok(Report::End)) && EXEC_REACHED.load(Ordering::Relaxed);
    if ran {
        return Ok(Container {
            pid,
            pidfd,
            pty: None,
            init: false,
        });
    }
    let failed = match report {
        Ok(Report::Failed(failure)) => Launch::Child(failure),
        Err(e) => Launch::Parent(e),
        // End of file with nothing said, and exec never reached: the child
        // died on the way.
        Ok(_) => match waitpid(pid, None) {
            Ok(status) => return Err(Launch::Parent(ContainerError::Died(status))),
            Err(e) => return Err(parent(e)),
        },
    };
    // It has exited, or will on its own: reap it.
    let _ = waitpid(pid, None);
    Err(failed)
}

/// Set by the child of [`launch`] (whose memory is this process's) right
/// before it calls exec; read once the child has exec'd or exited.
static EXEC_REACHED: AtomicBool = AtomicBool::new(false);

/// Called by the child of [`launch`] just before exec: from here on, its end
/// is the command's.
pub(super) fn exec_reached() {
    EXEC_REACHED.store(true, Ordering::Relaxed);
}

/// What the child of [`launch`] starts from.
struct Start<F> {
    child: std::mem::ManuallyDrop<F>,
    report: OwnedFd,
    lifeline: OwnedFd,
    /// The parent's ends of the two pipes: the child's copies are closed first.
    close: [RawFd; 2],
}

/// The child's first function, on its own stack. It takes bitwise copies of
/// what `start` holds rather than moving out of it: the memory is the
/// parent's, which still owns (and drops) the originals.
extern "C" fn start_child<F>(start: *mut libc::c_void) -> libc::c_int
where
    F: FnOnce(OwnedFd, OwnedFd) -> std::convert::Infallible,
{
    // SAFETY: `launch` passed a `Start<F>` that lives until this child has
    // exec'd or exited; each field is read once, and nothing here writes to it.
    let start = unsafe { &*(start as *const Start<F>) };
    for fd in start.close {
        // SAFETY: closes this child's copy only (no CLONE_FILES).
        unsafe { libc::close(fd) };
    }
    let (child, report, lifeline) = unsafe {
        (
            std::mem::ManuallyDrop::into_inner(std::ptr::read(&start.child)),
            std::ptr::read(&start.report),
            std::ptr::read(&start.lifeline),
        )
    };
    // `child` never returns: its result type has no value.
    #[allow(unreachable_code)]
    match child(report, lifeline) {}
}

/// The child's stack: anonymous memory (pages cost nothing until touched) with
/// an inaccessible page below it, so that an overflow faults instead of
/// writing over something else.
struct Stack {
    base: std::ptr::NonNull<libc::c_void>,
    len: usize,
}

impl Stack {
    /// Deep enough for the child's set-up, a small part of the main thread's.
    const SIZE: usize = 1 << 20;
    /// How far below its caller's frame a [`ChildStack::Below`] child starts.
    const SEPARATION: usize = 64 << 10;

    fn new() -> Result<Self, Errno> {
        use nix::sys::mman::{mmap_anonymous, mprotect, MapFlags, ProtFlags};
        let guard = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as usize);
        let len = Self::SIZE + guard;
        // SAFETY: a new private mapping, unmapped only by `drop`.
        let base = unsafe {
            mmap_anonymous(
                None,
                std::num::NonZeroUsize::new(len).expect("not zero"),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK | MapFlags::MAP_NORESERVE,
            )?
        };
        let stack = Self { base, len };
        // SAFETY: the lowest page of the mapping just made.
        unsafe { mprotect(base, guard, ProtFlags::PROT_NONE)? };
        Ok(stack)
    }

    /// Where the stack starts: it grows down, from the end of the mapping.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, as the clone ABI wants.
        unsafe { self.base.as_ptr().cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used: the child has exec'd or exited.
        let _ = unsafe { nix::sys::mman::munmap(self.base, self.len) };
    }
}

/// What the report pipe said before its end.
enum Report {
    /// Nothing: the child executed its command, or died on the way.
    End,
    Failed(Failure),
}

fn read_report(fd: &OwnedFd) -> Result<Report, ContainerError> {
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
        0 => Ok(Report::End),
        Failure::LEN => Failure::decode(&buf)
            .map(Report::Failed)
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
        Stage::OwnBinary => ContainerError::OwnBinary(command()),
        Stage::Exec => ContainerError::NotExecutable {
            command: command(),
            errno: f.errno,
        },
        Stage::Cwd if f.index == super::cwd::OUTSIDE => {
            ContainerError::CwdOutside(spec.cwd.to_owned())
        }
        Stage::Cwd if f.errno == Errno::ELOOP => ContainerError::CwdMagicLink(spec.cwd.to_owned()),
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

/// How many threads this process has: /proc counts them into the link count
/// of its `task` directory (two plus one per thread), so one `stat` answers.
fn threads() -> Result<u64, Errno> {
    let st = nix::sys::stat::stat("/proc/self/task")?;
    Ok((st.st_nlink as u64).saturating_sub(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;

    #[test]
    fn a_second_thread_is_refused_before_anything_is_cloned() {
        // The test harness runs this on a thread of its own: two at least.
        let r = launch(0, |_, _| unsafe { libc::_exit(0) });
        assert!(
            matches!(r, Err(Launch::Parent(ContainerError::Threads(n))) if n >= 2),
            "{:?}",
            r.err().map(|e| e.explain(&no_context()).to_string())
        );
    }

    #[test]
    fn a_child_that_dies_before_exec_is_reported_as_such() {
        // `launch` wants a single-threaded caller: a forked copy of this
        // test is one. It answers with its exit code.
        let check = || -> i32 {
            let killed = launch(0, |_, _| unsafe {
                libc::raise(libc::SIGKILL);
                libc::_exit(99)
            });
            let exited = launch(0, |_, _| unsafe { libc::_exit(3) });
            match (killed, exited) {
                (
                    Err(Launch::Parent(ContainerError::Died(WaitStatus::Signaled(
                        _,
                        Signal::SIGKILL,
                        _,
                    )))),
                    Err(Launch::Parent(ContainerError::Died(WaitStatus::Exited(_, 3)))),
                ) => 0,
                _ => 1,
            }
        };
        // SAFETY: the forked child only runs `check` and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(check()) },
            nix::unistd::ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn an_init_killed_at_its_exec_stop_is_left_for_the_supervisor() {
        // Deterministic form of the race seen under load: the exec has
        // succeeded, the init waits at its exec stop, and a SIGKILL lands
        // before psdock has looked at it. That is the command's end (the
        // supervisor reaps it and reports 137), not a failed start.
        let check = || -> i32 {
            let path = c"/bin/true";
            let argv = [path.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null::<libc::c_char>()];
            let launched = launch(0, |_, _| unsafe {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == 0 {
                    stops_at_exec();
                }
                exec_reached();
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(99)
            });
            let Ok(container) = launched else { return 1 };
            if exec_stop(&container.pidfd) != Ok(Some(libc::SIGTRAP)) {
                return 2;
            }
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", container.pid));
            if !stat.is_ok_and(|s| s.contains(") t ")) {
                return 3;
            }
            crate::proc::pidfd_send(&container.pidfd, libc::SIGKILL);
            if refuse_own_binary(&container, OsStr::new("true"), || Ok(())).is_err() {
                return 4;
            }
            // Still there to be reaped, once, by the supervisor's waitid.
            // SAFETY: zeroed siginfo is a valid buffer for waitid to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    3, // P_PIDFD
                    container.pidfd.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED,
                )
            };
            match (r, info.si_code, unsafe { info.si_status() }) {
                (0, libc::CLD_KILLED, libc::SIGKILL) => 0,
                _ => 5,
            }
        };
        // SAFETY: the forked child only runs `check` and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe { libc::_exit(check()) },
            nix::unistd::ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }

    fn no_context() -> Context<'static> {
        Context {
            command: OsStr::new("x"),
            cwd: Path::new("/"),
            binds: &[],
        }
    }
}
