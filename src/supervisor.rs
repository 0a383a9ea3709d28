//! The supervisor loop: one current-thread runtime watching the container's
//! pidfd, the signalfd, the kill timeout and the stdio pump.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use crate::container::Container;
use crate::lifecycle::{self, Lifecycle};
use crate::plugin::{Pump, PumpEnd, Transfer};
use crate::sd_notify;
use crate::signals::{self, Signals};
use crate::stdio::pty::{self, Foreground};

/// How the command ended, as psdock reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    /// psdock turned a SIGINT/SIGTERM, a SIGINT/SIGQUIT its terminal
    /// raised, or the SIGHUP of a hang-up (the value), into SIGKILL under
    /// the PID-1 rule.
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
    crate::proc::pidfd_send(&Fd(pidfd), sig);
}

/// The supervisor's runtime: one thread (no worker threads, so the container
/// can still be cloned from a single-threaded psdock after it is built). Built
/// before the stdio sink is opened, whose connections it then drives.
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

/// Starts moving the command's bytes, if its sink has a pump, on `rt`.
pub fn start_pump(
    rt: &tokio::runtime::Runtime,
    pump: Option<Box<dyn Pump>>,
    container: &Container,
) -> io::Result<Option<Transfer>> {
    let Some(pump) = pump else {
        return Ok(None);
    };
    let _runtime = rt.enter();
    // The container keeps its terminal's master until it is reaped: were the
    // pump's copy the last, a peer going away would hang the command up
    // before the PID-1 rule could be applied.
    let pty = container.pty.as_ref().map(|p| p.try_clone()).transpose()?;
    pump.start(pty).map(Some)
}

/// Runs until the container's init has exited, its output is delivered and
/// so are the notifications (or one timeout has passed); returns how it
/// ended.
pub fn supervise(
    rt: &tokio::runtime::Runtime,
    container: &Container,
    signals: &Signals,
    kill_timeout: Option<Duration>,
    stdio: Option<Transfer>,
    lifecycle: Lifecycle,
) -> io::Result<Ending> {
    let (mut events, ready, deliveries) = lifecycle.start(container.pid);
    let systemd = events.systemd();
    let run = lifecycle::alongside(deliveries, async {
        let pidfd = container.pidfd.as_raw_fd();
        // SAFETY: both descriptors are owned by our callers and outlive these
        // registrations, which end with this block.
        let exited = unsafe { AsyncFd::register_with_interest(Fd(pidfd), Interest::READABLE)? };
        let sigfd = unsafe {
            AsyncFd::register_with_interest(Fd(signals.as_raw_fd()), Interest::READABLE)?
        };
        let translated = std::cell::Cell::new(None);
        let stopping = std::cell::Cell::new(false);
        let mut deadline: Option<Instant> = None;
        // The PID-1 rule: a signal that would end an ordinary process is
        // dropped by an init that neither catches nor ignores it, so psdock
        // ends the command in its place.
        let pid_one = |sig: i32| {
            if signals::handles(container.pid.as_raw(), sig) {
                return false;
            }
            send(pidfd, libc::SIGKILL);
            translated.set(translated.get().or(Some(sig)));
            true
        };
        let stop_in_time = |deadline: &mut Option<Instant>| {
            if let (None, Some(t)) = (*deadline, kill_timeout) {
                // A timeout too far to represent is no timeout.
                *deadline = Instant::now().checked_add(t);
            }
        };
        let deliver = |sig: i32, deadline: &mut Option<Instant>| {
            if sig == libc::SIGINT || sig == libc::SIGTERM {
                stopping.set(true);
                stop_in_time(deadline);
                if pid_one(sig) {
                    return;
                }
            }
            send(pidfd, sig);
        };
        // What a terminal's hang-up does (the peer or psdock's own terminal
        // went away): SIGHUP, then SIGCONT so that a stopped job sees it, to
        // the controlling process (the init, its session's leader) and to the
        // foreground process group of the container's terminal; then the stop
        // sequence, as for SIGTERM. Once: a peer's end and the kernel's SIGHUP
        // may both report it.
        let hung_up = std::cell::Cell::new(false);
        let hang_up = |deadline: &mut Option<Instant>| {
            if hung_up.replace(true) {
                return;
            }
            stopping.set(true);
            stop_in_time(deadline);
            let init = container.pid.as_raw();
            let foreground = container
                .pty
                .as_ref()
                .map_or(Foreground::Unknown, |master| {
                    pty::foreground(master.as_raw_fd(), init)
                });
            for sig in [libc::SIGHUP, libc::SIGCONT] {
                match &foreground {
                    Foreground::Init => pty::signal_group(pidfd, init, sig),
                    Foreground::Group(pgrp, leader) => {
                        pty::signal_group(leader.as_raw_fd(), *pgrp, sig);
                        send(pidfd, sig);
                    }
                    Foreground::Unknown => send(pidfd, sig),
                }
            }
            pid_one(libc::SIGHUP);
        };
        let (mut pump, resize, mut raised) = match stdio {
            Some(t) => (Some(t.done), t.resize, t.raised),
            None => (None, None, None),
        };
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
                        if sig == signals::HANG_UP {
                            events.stopping();
                            hang_up(&mut deadline);
                            continue;
                        }
                        // With a terminal, SIGWINCH is psdock's: the terminal's
                        // size changes, and the kernel tells the container.
                        // SIGCONT may bring psdock back to its terminal's
                        // foreground, which may have been resized meanwhile.
                        if let (libc::SIGWINCH | libc::SIGCONT, Some(resize)) = (sig, &resize) {
                            resize();
                            if sig == libc::SIGWINCH {
                                continue;
                            }
                        }
                        if sig == libc::SIGINT || sig == libc::SIGTERM {
                            events.stopping();
                        }
                        deliver(sig, &mut deadline);
                    }
                    guard.clear_ready();
                }
                sig = async { raised.as_mut().expect("guarded").recv().await }, if raised.is_some() => {
                    // The terminal has delivered it already; a shell that
                    // traps Ctrl-C carries on, with no kill timeout started.
                    match sig {
                        Some(sig) => {
                            pid_one(sig);
                        }
                        None => raised = None,
                    }
                }
                end = async { pump.as_mut().expect("guarded").await }, if pump.is_some() => {
                    pump = None;
                    if let PumpEnd::PeerGone(e) = end {
                        if !is_hangup(&e) {
                            eprintln!("psdock: {}", crate::stdio::pump::failure(&e));
                        }
                        events.stopping();
                        hang_up(&mut deadline);
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    send(pidfd, libc::SIGKILL);
                    deadline = None;
                }
            }
        }
        // The command has ended: what is left is psdock's own teardown.
        events.stopping();
        // What the command wrote before it ended is delivered. Once psdock
        // is told to stop, a sink that cannot take it (a full disk, a peer
        // that does not read) gets DRAIN more, and a second stop signal ends
        // the wait at once.
        if let Some(mut pump) = pump {
            let mut give_up = stopping.get().then(|| Instant::now() + DRAIN);
            let delivered = loop {
                tokio::select! {
                    biased;
                    _ = &mut pump => break true,
                    guard = sigfd.readable() => {
                        let mut guard = guard?;
                        let mut stop = false;
                        while let Some(sig) = signals.next()? {
                            stop |= sig == libc::SIGINT || sig == libc::SIGTERM;
                        }
                        guard.clear_ready();
                        if stop {
                            if give_up.is_some() {
                                break false;
                            }
                            give_up = Some(Instant::now() + DRAIN);
                        }
                    }
                    _ = tokio::time::sleep_until(give_up.unwrap_or_else(Instant::now)), if give_up.is_some() => break false,
                }
            };
            if !delivered {
                drop(pump);
                eprintln!(
                    "psdock: the output's destination took no more within {}s of the stop: {} bytes not delivered",
                    DRAIN.as_secs(),
                    crate::stdio::pump::take_undelivered()
                );
            }
        }
        let ending = match (reap(pidfd)?, translated.get()) {
            (Ending::Signaled(libc::SIGKILL), Some(sig)) => Ending::Translated(sig),
            (ending, _) => ending,
        };
        events.crashed(ending.into());
        drop(events);
        Ok(ending)
    });
    rt.block_on(sd_notify::watching(systemd.as_deref(), run))
}

/// How long output may still take to reach a stuck sink once psdock was
/// told to stop and the command is gone.
const DRAIN: Duration = Duration::from_secs(2);

/// The peer simply went away: nothing worth a message.
fn is_hangup(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
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
