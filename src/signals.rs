//! The signals psdock forwards: blocked from the very start and read from a
//! signalfd, so that one arriving before the command runs is held, not lost.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The fault signals. The kernel raises them for a fault of psdock's own and
/// forces them through any mask, so psdock still crashes on one; sent with
/// kill(2) from outside, they are held and read like the others, and taken
/// as SIGTERM (see [`Signals::next`]): psdock stops the command and tears
/// down instead of dying with its mounts and state entry left behind.
const FAULTS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Every catchable signal except those psdock needs or that concern psdock's
/// own execution: SIGCHLD, the fault signals, SIGPIPE (psdock's own writes),
/// SIGTTIN/SIGTTOU (psdock's own terminal access) and SIGXFSZ (psdock's own
/// log past a file-size limit). glibc keeps 32 and 33.
pub fn forwarded(sig: i32) -> bool {
    const OWN: [i32; 7] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGPIPE,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGXFSZ,
    ];
    ((1..32).contains(&sig) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig))
        && !OWN.contains(&sig)
        && !FAULTS.contains(&sig)
}

/// What [`Signals::next`] gives for a SIGHUP from the kernel (`si_code`
/// SI_KERNEL): psdock's terminal hung up (psdock is its session's leader, or
/// was in its foreground when the leader went), or psdock's process group was
/// orphaned while stopped. The run is hung up in turn. A SIGHUP sent with
/// kill(2) (an operator's, or a shell's passing its own hang-up on to its
/// jobs) is an ordinary signal, forwarded. 0, the null signal: forwarded by
/// mistake, it would do nothing.
pub const HANG_UP: i32 = 0;

pub struct Signals {
    fd: OwnedFd,
    /// SIGHUP was ignored when psdock started (`nohup`): the kernel's hang-up
    /// is ignored too, as asked.
    nohup: bool,
}

impl Signals {
    /// Blocks the forwarded signals and the fault signals in this thread (and
    /// so in every thread started later) and opens a non-blocking signalfd for
    /// them.
    ///
    /// SIGCHLD goes back to its default first: psdock learns the command's
    /// exit by waiting for it, and with SIGCHLD ignored (inherited from
    /// whoever started psdock) the kernel reaps children on its own, so the
    /// exit code would be lost.
    ///
    /// SIGTTIN and SIGTTOU are ignored: a psdock in the background of its
    /// terminal that reads, writes or sets it would otherwise be stopped, and a
    /// stopped supervisor neither forwards, nor kills on time, nor tears down.
    /// The container's init resets both before the command runs.
    ///
    /// SIGXFSZ is ignored too: under a file-size limit (`ulimit -f`) a log
    /// write past it then fails with EFBIG, which holds the command as a full
    /// disk does, rather than killing psdock with its mounts left behind.
    pub fn block() -> io::Result<Self> {
        let nohup = disposition(libc::SIGHUP)? == libc::SIG_IGN;
        set_disposition(libc::SIGCHLD, libc::SIG_DFL)?;
        set_disposition(libc::SIGTTIN, libc::SIG_IGN)?;
        set_disposition(libc::SIGTTOU, libc::SIG_IGN)?;
        set_disposition(libc::SIGXFSZ, libc::SIG_IGN)?;
        // SAFETY: sigset manipulation on a local set; signalfd returns a new fd.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in 1..=libc::SIGRTMAX() {
                if forwarded(sig) || FAULTS.contains(&sig) {
                    libc::sigaddset(&mut set, sig);
                }
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self {
                fd: OwnedFd::from_raw_fd(fd),
                nohup,
            })
        }
    }

    /// The next pending signal, if any. A fault signal sent from outside
    /// comes out as SIGTERM, a SIGHUP from the kernel as [`HANG_UP`].
    pub fn next(&self) -> io::Result<Option<i32>> {
        // SAFETY: zeroed siginfo is a valid buffer for the kernel to fill.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => self.next(),
                _ => Err(e),
            };
        }
        let sig = info.ssi_signo as i32;
        if FAULTS.contains(&sig) {
            // kill, sigqueue, tgkill and the like give codes of 0 or below;
            // the kernel's own are above 0.
            if info.ssi_code > 0 {
                crash(sig);
            }
            return Ok(Some(libc::SIGTERM));
        }
        if sig == libc::SIGHUP && info.ssi_code == libc::SI_KERNEL {
            if self.nohup {
                return self.next();
            }
            return Ok(Some(HANG_UP));
        }
        Ok(Some(sig))
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// A kernel-raised fault signal that was queued rather than forced (a
/// memory error reported after the fact): psdock dies of it as it would
/// have unblocked.
fn crash(sig: i32) -> ! {
    let _ = set_disposition(sig, libc::SIG_DFL);
    // SAFETY: a local signal set; raise delivers to this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::abort()
}

/// SIGINT or SIGTERM, when one is pending: blocked from the start, they wait
/// there until psdock reads them. A pending fault signal counts as SIGTERM:
/// only one sent from outside can be pending. Set-up polls this where it may take long
/// (unpacking an image) and once before the command starts, so that either
/// ends psdock before anything runs rather than waiting for an image that
/// never ends; once the command runs they are forwarded to it.
pub fn stop_pending() -> Option<i32> {
    // SAFETY: sigpending fills a local set; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut set) != 0 {
            return None;
        }
        let pending = |sig: &i32| libc::sigismember(&set, *sig) == 1;
        [libc::SIGINT, libc::SIGTERM]
            .into_iter()
            .find(pending)
            .or_else(|| FAULTS.iter().any(pending).then_some(libc::SIGTERM))
    }
}

/// The kernel's `struct sigaction` (x86_64, aarch64). Only SIG_DFL and SIG_IGN
/// are ever set, which need no restorer.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The kernel's signal set size.
const SIGSET_SIZE: usize = 8;

/// Sets `sig` to `handler` (`SIG_DFL` or `SIG_IGN`) with the raw system call:
/// glibc's wrappers refuse 32 and 33, its own, so they could neither reset nor
/// set them. Neither allocates nor locks: safe in the container's cloned init.
pub fn set_disposition(sig: i32, handler: libc::sighandler_t) -> io::Result<()> {
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    rt_sigaction(sig, &act).map(drop)
}

/// The handler `sig` has now (`SIG_DFL`, `SIG_IGN` or a function).
fn disposition(sig: i32) -> io::Result<libc::sighandler_t> {
    rt_sigaction(sig, std::ptr::null())
}

/// Sets `sig`'s action to `act` unless it is null; returns the handler it had.
fn rt_sigaction(sig: i32, act: *const KernelSigaction) -> io::Result<libc::sighandler_t> {
    let mut old = std::mem::MaybeUninit::<KernelSigaction>::zeroed();
    // SAFETY: plain system call on local, correctly laid out data; `act` is
    // null or points to a live KernelSigaction.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            act,
            old.as_mut_ptr(),
            SIGSET_SIZE,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed is a valid KernelSigaction, and the kernel filled it.
    Ok(unsafe { old.assume_init() }.handler)
}

/// Unblocks every signal, 32 and 33 included, with the raw system call.
pub fn unblock_all() -> io::Result<()> {
    let empty: u64 = 0;
    // SAFETY: plain system call on a local signal set.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `pid` catches or ignores `sig`, from all 64 bits of `SigCgt` and
/// `SigIgn` in `/proc/<pid>/status`. A PID 1 that does neither never sees
/// SIGINT or SIGTERM sent from outside its namespace.
pub fn handles(pid: i32, sig: i32) -> bool {
    let Ok(status) = crate::proc::read(&format!("/proc/{pid}/status")) else {
        return false;
    };
    let status = String::from_utf8_lossy(&status);
    mask_has(&status, "SigCgt:", sig) || mask_has(&status, "SigIgn:", sig)
}

/// The conventional name of a signal (`SIGTERM`, `SIGRTMIN+3`), for reports.
pub fn name(sig: i32) -> String {
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        return s.as_str().to_owned();
    }
    match sig - libc::SIGRTMIN() {
        0 => "SIGRTMIN".to_owned(),
        n if n > 0 && sig <= libc::SIGRTMAX() => format!("SIGRTMIN+{n}"),
        _ => format!("SIG{sig}"),
    }
}

fn mask_has(status: &str, field: &str, sig: i32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| (1..=64).contains(&sig) && mask & (1u64 << (sig - 1)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_64_bits_of_the_masks() {
        let status = "Name:\tx\nSigIgn:\t0000000000000004\nSigCgt:\t8000000000004000\n";
        assert!(mask_has(status, "SigCgt:", libc::SIGTERM));
        assert!(mask_has(status, "SigCgt:", 64));
        assert!(!mask_has(status, "SigCgt:", libc::SIGINT));
        assert!(mask_has(status, "SigIgn:", libc::SIGQUIT));
    }

    #[test]
    fn signal_names() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGKILL), "SIGKILL");
        assert_eq!(name(libc::SIGRTMIN()), "SIGRTMIN");
        assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert_eq!(name(99), "SIG99");
    }

    #[test]
    fn psdock_keeps_what_it_needs() {
        assert!(forwarded(libc::SIGTERM) && forwarded(libc::SIGHUP) && forwarded(libc::SIGUSR1));
        assert!(
            forwarded(libc::SIGWINCH) && forwarded(libc::SIGRTMIN()) && forwarded(libc::SIGRTMAX())
        );
        assert!(
            !forwarded(libc::SIGCHLD)
                && !forwarded(libc::SIGPIPE)
                && !forwarded(libc::SIGKILL)
                && !forwarded(libc::SIGXFSZ)
        );
        assert!(!forwarded(32) && !forwarded(33));
    }

    #[test]
    fn a_sent_fault_signal_reads_as_sigterm_and_a_real_fault_still_kills() {
        // In a child of its own: the mask must not reach the harness's threads.
        // Between fork and the end, only system calls: nothing allocates.
        // SAFETY: fork, then plain system calls in the child, which exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = Signals::block().is_ok_and(|s| {
                unsafe { libc::kill(libc::getpid(), libc::SIGSEGV) };
                matches!(s.next(), Ok(Some(libc::SIGTERM)))
            });
            if !ok {
                unsafe { libc::_exit(1) };
            }
            // A real fault, with SIGSEGV still blocked and read by a signalfd.
            unsafe {
                let page = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                std::ptr::write_volatile(page.cast::<u8>(), 1);
                libc::_exit(2)
            }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV,
            "child status {status:#x} (exit 1: the sent SIGSEGV was not read as SIGTERM; \
             exit 2: the fault did not kill)"
        );
    }

    /// Queues SIGHUP to this process with `code` (the kernel lets a process
    /// give its own signals any code).
    fn hup_with_code(code: i32) {
        // SAFETY: a zeroed siginfo with its first three fields set.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            info.si_signo = libc::SIGHUP;
            info.si_code = code;
            libc::syscall(
                libc::SYS_rt_sigqueueinfo,
                libc::getpid(),
                libc::SIGHUP,
                &info as *const libc::siginfo_t,
            );
        }
    }

    #[test]
    fn the_kernels_sighup_is_a_hang_up_unless_psdock_was_started_under_nohup() {
        for nohup in [false, true] {
            // In a child of its own, as above.
            // SAFETY: fork, then plain system calls in the child, which exits.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                if nohup {
                    let _ = set_disposition(libc::SIGHUP, libc::SIG_IGN);
                }
                // One at a time: a second SIGHUP pending would be merged.
                let ok = Signals::block().is_ok_and(|s| {
                    hup_with_code(libc::SI_USER);
                    let sent = matches!(s.next(), Ok(Some(libc::SIGHUP)));
                    hup_with_code(libc::SI_KERNEL);
                    let kernels = if nohup { None } else { Some(HANG_UP) };
                    sent && s.next().ok() == Some(kernels) && matches!(s.next(), Ok(None))
                });
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "nohup {nohup}: status {status:#x}"
            );
        }
    }
}
