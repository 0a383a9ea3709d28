//! The supervisor loop: one current-thread runtime watching the container's
//! pidfd, the signalfd, the kill timeout and the stdio pump.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use crate::container::Container;
use crate::health::Health;
use crate::lifecycle::{self, Lifecycle};
use crate::plugin::{Pump, PumpEnd, Transfer};
use crate::sd_notify;
use crate::signals::{self, Signals};
use crate::spec::limits::OomStrategy;
use crate::stdio::pty::{self, Foreground};

/// How soon, and how many times, an OOM wake-up without a new kill is looked at again.
const OOM_RECHECK: Duration = Duration::from_millis(20);
const OOM_RECHECKS: u32 = 25;

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

/// What the supervisor reports of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervised {
    pub ending: Ending,
    /// psdock stopped the command because its health check made it
    /// `unhealthy` (`RunSpec::stop_when_unhealthy`).
    pub unhealthy: bool,
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
        // A blocking thread (a web hook's name look-up, a port probe's
        // command) goes soon after its task: while one exists, no process
        // can be started in the container (a health check waits for it).
        .thread_keep_alive(Duration::from_millis(100))
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

/// What a run watches beside its init, its signals and its output, when
/// asked for: each left out costs nothing.
#[derive(Default)]
pub struct Watches<'a, 'm> {
    /// The health check: `running` then waits for the first `healthy`.
    pub health: Option<&'a mut crate::health::Monitor<'m>>,
    /// The cgroup's OOM kills.
    pub oom: Option<&'a mut crate::cgroup::Oom>,
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
    watches: Watches<'_, '_>,
) -> io::Result<Supervised> {
    let Watches {
        health: mut monitor,
        mut oom,
    } = watches;
    let (mut events, ready, deliveries) = lifecycle.start(container.pid);
    let systemd = events.systemd();
    if let Some(m) = &monitor {
        events.health(m.health(), false);
    }
    let run = lifecycle::alongside(deliveries, async {
        let pidfd = container.pidfd.as_raw_fd();
        // SAFETY: both descriptors are owned by our callers and outlive these
        // registrations, which end with this block.
        let exited = unsafe { AsyncFd::register_with_interest(Fd(pidfd), Interest::READABLE)? };
        let sigfd = unsafe {
            AsyncFd::register_with_interest(Fd(signals.as_raw_fd()), Interest::READABLE)?
        };
        // SAFETY: the watch is our caller's and outlives this block.
        let oomfd = oom
            .as_ref()
            .map(|o| unsafe {
                AsyncFd::register_with_interest(Fd(o.as_raw_fd()), Interest::READABLE)
            })
            .transpose()?;
        // v1 signals the OOM before the kill is counted: a wake-up that finds
        // no new kill looks again shortly, a few times.
        let mut oom_recheck: Option<(Instant, u32)> = None;
        let on_oom = |oom: &mut crate::cgroup::Oom, events: &mut lifecycle::Events| {
            let Some(kills) = oom.check() else {
                return false;
            };
            events.oom(kills);
            if oom.strategy() != OomStrategy::Notify {
                oom.kill_all();
            }
            true
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
        let (mut ready_done, mut running, mut unhealthy) = (false, false, false);
        loop {
            // Ready: executed (or listening on -bind-port), and healthy once.
            if !running
                && ready_done
                && monitor
                    .as_ref()
                    .is_none_or(|m| m.health() == Health::Healthy)
            {
                running = true;
                events.running();
            }
            tokio::select! {
                biased;
                () = &mut ready, if !ready_done => ready_done = true,
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
                            eprintln!("psdock: -stdio: {e}");
                        }
                        events.stopping();
                        hang_up(&mut deadline);
                    }
                }
                health = async { monitor.as_mut().expect("guarded").next().await }, if monitor.is_some() && !unhealthy => {
                    // A first `healthy` that makes the command ready goes out
                    // as `running`, which carries it.
                    let readies = !running && ready_done && health == Health::Healthy;
                    events.health(health, !readies);
                    if health == Health::Unhealthy && monitor.as_ref().is_some_and(|m| m.stop_when_unhealthy) {
                        unhealthy = true;
                        events.stopping();
                        deliver(libc::SIGTERM, &mut deadline);
                    }
                }
                guard = async { oomfd.as_ref().expect("guarded").readable().await }, if oomfd.is_some() => {
                    guard?.clear_ready();
                    let o = oom.as_deref_mut().expect("watched");
                    if !on_oom(o, &mut events) {
                        oom_recheck = Some((Instant::now() + OOM_RECHECK, OOM_RECHECKS));
                    }
                }
                _ = tokio::time::sleep_until(oom_recheck.map_or_else(Instant::now, |r| r.0)), if oom_recheck.is_some() => {
                    let o = oom.as_deref_mut().expect("watched");
                    oom_recheck = match oom_recheck {
                        _ if on_oom(o, &mut events) => None,
                        Some((_, left)) if left > 1 => Some((Instant::now() + OOM_RECHECK, left - 1)),
                        _ => None,
                    };
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
                    "psdock: -stdio: the sink took no more output within {}s of the stop: {} bytes not delivered",
                    DRAIN.as_secs(),
                    crate::stdio::pump::take_undelivered()
                );
            }
        }
        let ending = match (reap(pidfd)?, translated.get()) {
            (Ending::Signaled(libc::SIGKILL), Some(sig)) => Ending::Translated(sig),
            (ending, _) => ending,
        };
        // Kills that came with the end, before the cgroup goes.
        if let Some(o) = oom.as_deref_mut() {
            if let Some(kills) = o.check() {
                events.oom(kills);
            }
        }
        events.crashed(ending.into());
        drop(events);
        Ok(Supervised { ending, unhealthy })
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

/// Reaps the child behind `pidfd`, which has ended.
pub(crate) fn reap(pidfd: RawFd) -> io::Result<Ending> {
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
