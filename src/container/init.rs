//! The child side: runs in the new namespaces as PID 1 until it execs the command.
//! Each step either succeeds or reports a [`Failure`] and exits; nothing here
//! returns to psdock's code.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::plan::{Plan, ProcessPlan};
use super::report::{Failure, Stage};
use super::{caps, cwd, mounts};
use crate::fsutil::{self, Create};
use crate::signals;

trait At<T> {
    fn at(self, stage: Stage) -> Result<T, Failure>;
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, stage: Stage) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(stage, e))
    }
}

fn check(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Never returns: execs the command (or with `init_exe`, psdock-init: see
/// `reaper`), or reports and exits.
pub fn run(
    plan: &Plan,
    init_exe: Option<RawFd>,
    report: OwnedFd,
    lifeline: OwnedFd,
    tty: Option<OwnedFd>,
) -> ! {
    let result = setup(plan, init_exe, &lifeline, tty);
    finish(report, result)
}

/// Reports the failure of a child's setup on the report pipe and exits with
/// the code psdock would use for it.
pub(super) fn finish(report: OwnedFd, result: Result<std::convert::Infallible, Failure>) -> ! {
    let failure = match result {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let bytes = failure.encode();
    // SAFETY: writing a local buffer to our own pipe, then leaving without
    // running any of psdock's destructors or atexit handlers.
    unsafe {
        libc::write(report.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(match (failure.stage, failure.errno) {
            (Stage::Exec, Errno::ENOENT | Errno::ENOTDIR) => 127,
            (Stage::Exec, _) => 126,
            _ => 125,
        })
    }
}

/// Moves the calling process into every `cgroup.procs` the plan names ("0":
/// the writer itself), so that what it starts is born inside.
pub(super) fn join_cgroup(process: &ProcessPlan) -> Result<(), Errno> {
    for procs in &process.cgroup_procs {
        let fd = nix::fcntl::open(
            procs.as_c_str(),
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: a descriptor just opened, closed once written to.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::unistd::write(&fd, b"0")?;
    }
    Ok(())
}

/// The first steps of every child: die with the parent, start a session and
/// take the planned stdio.
pub(super) fn begin(process: &ProcessPlan, lifeline: &OwnedFd) -> Result<(), Failure> {
    // SAFETY (all prctl calls): integer arguments only.
    // Die with the parent; and keep /proc/<pid>/exe (psdock's binary, until
    // exec) out of reach of anything that could see this process. The
    // memory, and with it the dumpable flag, is the parent's until exec
    // (see `spawn::launch`), which sets it back.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as _)
        .at(Stage::Parent)?;
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } as _).at(Stage::Parent)?;
    parent_alive(lifeline)?;
    nix::unistd::setsid().at(Stage::Session)?;
    for (target, fd) in process.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            nix::unistd::dup2(*fd, target as RawFd).at(Stage::Stdio)?;
        }
    }
    Ok(())
}

fn setup(
    plan: &Plan,
    init_exe: Option<RawFd>,
    lifeline: &OwnedFd,
    tty_channel: Option<OwnedFd>,
) -> Result<std::convert::Infallible, Failure> {
    begin(&plan.process, lifeline)?;
    // Only under -init (see `Plan::cgroup_procs`); before the host's /sys is
    // out of sight.
    join_cgroup(&plan.process).at(Stage::Cgroup)?;
    if let Some(ns) = plan.netns {
        // SAFETY: plain system call on a descriptor the parent holds open.
        check(unsafe { libc::setns(ns, libc::CLONE_NEWNET) } as _).at(Stage::Network)?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .at(Stage::Private)?;
    // Host paths are reachable only until pivot_root: take copies of the trees now.
    let mut trees = Vec::with_capacity(plan.binds.len());
    for (i, b) in plan.binds.iter().enumerate() {
        let tree = mounts::clone_tree(&b.source, b.readonly).map_err(|errno| Failure {
            stage: Stage::OpenBind,
            index: i as u16,
            errno,
        })?;
        trees.push(tree);
    }
    let resolv = match &plan.resolv_conf {
        Some(source) => Some(mounts::clone_tree(source, true).at(Stage::ResolvConf)?),
        None => None,
    };

    pivot(&plan.rootfs).at(Stage::PivotRoot)?;
    mounts::system(&plan.devices).at(Stage::SystemMount)?;
    // The terminal comes from the container's own devpts, mounted just now;
    // setsid() above left this process without a controlling terminal.
    if let (Some(tty), Some(channel)) = (&plan.tty, tty_channel) {
        crate::stdio::pty::open_in_container(tty, plan.process.uid, channel.as_raw_fd())
            .at(Stage::Tty)?;
    }
    let root = std::fs::File::open("/").map_err(|e| io_failure(Stage::PivotRoot, 0, &e))?;
    if let Some(tree) = resolv {
        let target = fsutil::open_in_root(&root, Path::new("/etc/resolv.conf"), Create::File)
            .map_err(|e| io_failure(Stage::ResolvConf, 0, &e))?;
        mounts::attach(&tree, &target).at(Stage::ResolvConf)?;
    }
    for (i, (b, tree)) in plan.binds.iter().zip(&trees).enumerate() {
        let create = if b.is_dir { Create::Dir } else { Create::File };
        let target = fsutil::open_in_root(&root, &b.target, create)
            .map_err(|e| io_failure(Stage::Bind, i, &e))?;
        mounts::attach(tree, &target).map_err(|errno| Failure {
            stage: Stage::Bind,
            index: i as u16,
            errno,
        })?;
    }
    drop(trees);
    drop(root);
    mounts::mask().at(Stage::Mask)?;
    nix::unistd::sethostname(plan.hostname.to_str().unwrap_or("psdock")).at(Stage::Hostname)?;
    if let Some(exe) = init_exe {
        return super::reaper::start(plan, exe, lifeline);
    }
    // Stop at the exec, before the command's first instruction, so that
    // psdock can look at what was executed (`spawn::refuse_own_binary`).
    // Refused when psdock is itself traced (a debugger): psdock then looks
    // without the stop.
    // SAFETY: PTRACE_TRACEME takes no pointer.
    if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } == 0 {
        super::spawn::stops_at_exec();
    }

    become_process(&plan.process, lifeline)
}

/// The last steps of every child, in the container's root: drop capabilities,
/// switch user, no_new_privs, working directory, clean signal state, close
/// every other descriptor, system-call filter, exec.
pub(super) fn become_process(
    plan: &ProcessPlan,
    lifeline: &OwnedFd,
) -> Result<std::convert::Infallible, Failure> {
    caps::bound(plan.caps, plan.cap_last).at(Stage::Capabilities)?;
    switch_user(plan).at(Stage::User)?;
    caps::set(if plan.uid == 0 { plan.caps } else { 0 }).at(Stage::Capabilities)?;
    // A change of credentials clears PDEATHSIG: arm it again.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } as _)
        .at(Stage::User)?;
    parent_alive(lifeline)?;
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as _)
        .at(Stage::NoNewPrivs)?;
    // Every descriptor above 2 goes at exec; the report pipe with them, which is
    // how psdock learns that exec succeeded.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .at(Stage::Exec)?;
    cwd::enter(&plan.cwd)?;

    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    reset_signals();
    // Last, so that none of psdock's own calls above need to be allowed.
    if let Some(filter) = &plan.seccomp {
        filter.install().at(Stage::Seccomp)?;
    }
    Err(exec(plan))
}

/// Fails when the parent died before PDEATHSIG was armed, which would never
/// fire then. Only the parent holds the write end of `lifeline` and never writes
/// to it: the pipe becomes readable (end-of-file) only when the parent is gone.
pub(super) fn parent_alive(lifeline: &OwnedFd) -> Result<(), Failure> {
    use std::os::fd::AsFd;
    let mut pfd = [nix::poll::PollFd::new(
        lifeline.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).at(Stage::Parent)? > 0 {
        return Err(Failure::new(Stage::Parent, Errno::ESRCH));
    }
    Ok(())
}

fn io_failure(stage: Stage, index: usize, e: &std::io::Error) -> Failure {
    Failure {
        stage,
        index: index as u16,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// pivot_root(".", ".") then detach the old root stacked under the new one: no
/// directory for the old root is needed, and none is left in the container.
fn pivot(rootfs: &CString) -> Result<(), Errno> {
    nix::unistd::chdir(rootfs.as_c_str())?;
    // The host's ROOTFS mount is nosuid and nodev (`rootfs::prepare`); this
    // namespace's copy of it is the container's `/`, where setuid programs
    // (su, ping, sudo) must work as they would anywhere, and device nodes stay
    // off. Private by now, so nothing propagates back to the host's copy.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NODEV,
        None::<&str>,
    )?;
    // SAFETY: two valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")
}

/// Raw system calls: glibc's wrappers broadcast to threads it believes exist,
/// which in a cloned child can wait forever.
pub(super) fn switch_user(plan: &ProcessPlan) -> Result<(), Errno> {
    // SAFETY: plain system calls; `groups` outlives the call.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            plan.groups.len(),
            plan.groups.as_ptr(),
        ))?;
        check(libc::syscall(
            libc::SYS_setresgid,
            plan.gid,
            plan.gid,
            plan.gid,
        ))?;
        check(libc::syscall(
            libc::SYS_setresuid,
            plan.uid,
            plan.uid,
            plan.uid,
        ))?;
    }
    Ok(())
}

/// psdock blocks the signals it forwards and ignores SIGPIPE (main.rs), and its own
/// parent may have left any signal ignored (32 and 33 included, which glibc's
/// wrappers cannot touch): none of it may leak into the command, since an exec
/// keeps both the mask and ignored dispositions. Neither call can fail for these
/// arguments.
fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            let _ = signals::set_disposition(sig, libc::SIG_DFL);
        }
    }
    let _ = signals::unblock_all();
}

/// Tries each candidate like execvp, but with the container's PATH. Returns the
/// failure to report: the first error that is not "no such file", else ENOENT.
fn exec(plan: &ProcessPlan) -> Failure {
    let argv: Vec<*const libc::c_char> = plan
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut first_real = None;
    super::spawn::exec_reached();
    for path in &plan.candidates {
        // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let errno = Errno::last();
        if !matches!(errno, Errno::ENOENT | Errno::ENOTDIR) && first_real.is_none() {
            first_real = Some(errno);
        }
    }
    Failure::new(Stage::Exec, first_real.unwrap_or(Errno::ENOENT))
}
