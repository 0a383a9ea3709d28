//! The supervisor loop: one current-thread runtime watching the container's
//! pidfd, the signalfd and the kill timeout, with the lifecycle events (port
//! probe, notifications) beside it.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use crate::container::Container;
use crate::lifecycle::{self, Lifecycle};
use crate::signals::{self, Signals};

/// How the command ended, as psdock reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    /// psdock turned a SIGINT/SIGTERM (the value) into SIGKILL under the PID-1 rule.
    Translated(i32),
}

impl Ending {
    pub fn exit_code(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Signaled(sig) | Ending::Translated(sig) => 128 + sig,
        }
    }
}

struct Fd(RawFd);
impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn send(pidfd: RawFd, sig: i32) {
    // SAFETY: plain system call on a pidfd we own. ESRCH (already gone) is fine.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// Runs until the container's init has exited (and the notifications are
/// delivered, or one timeout has passed); returns how it ended.
pub fn supervise(
    container: &Container,
    signals: &Signals,
    kill_timeout: Option<Duration>,
    lifecycle: Lifecycle,
) -> io::Result<Ending> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let (mut events, ready, deliveries) = lifecycle.start(container.pid);
    let ending = rt.block_on(lifecycle::alongside(deliveries, async {
        let pidfd = container.pidfd.as_raw_fd();
        // SAFETY: both descriptors are owned by our callers and outlive these
        // registrations, which end with this block.
        let exited = unsafe { AsyncFd::register_with_interest(Fd(pidfd), Interest::READABLE)? };
        let sigfd = unsafe { AsyncFd::register_with_interest(Fd(signals.as_raw_fd()), Interest::READABLE)? };
        let mut translated = None;
        let mut deadline: Option<Instant> = None;
        let mut ready = std::pin::pin!(ready);
        let mut running = false;
        loop {
            tokio::select! {
                biased;
                () = &mut ready, if !running => {
                    running = true;
                    events.running();
                }
                _ = exited.readable() => break,
                guard = sigfd.readable() => {
                    let mut guard = guard?;
                    while let Some(sig) = signals.next()? {
                        if sig == libc::SIGINT || sig == libc::SIGTERM {
                            if let (None, Some(t)) = (deadline, kill_timeout) {
                                deadline = Some(Instant::now() + t);
                            }
                            if !signals::handles(container.pid.as_raw(), sig) {
                                send(pidfd, libc::SIGKILL);
                                translated.get_or_insert(sig);
                                continue;
                            }
                        }
                        send(pidfd, sig);
                    }
                    guard.clear_ready();
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    send(pidfd, libc::SIGKILL);
                    deadline = None;
                }
            }
        }
        let ending = match (reap(pidfd)?, translated) {
            (Ending::Signaled(libc::SIGKILL), Some(sig)) => Ending::Translated(sig),
            (ending, _) => ending,
        };
        events.crashed(ending.into());
        drop(events);
        Ok(ending)
    }));
    lifecycle::leave(rt);
    ending
}

fn reap(pidfd: RawFd) -> io::Result<Ending> {
    const P_PIDFD: libc::idtype_t = 3;
    loop {
        // SAFETY: zeroed siginfo is a valid buffer for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled in a child status.
        let status = unsafe { info.si_status() };
        return Ok(match info.si_code {
            libc::CLD_EXITED => Ending::Exited(status),
            _ => Ending::Signaled(status),
        });
    }
}
