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
use crate::plugin::{Held, Pump, PumpEnd, Transfer};
use crate::sd_notify;
use crate::service::Cause;
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

/// How one attempt ended, and what the loop above it needs to know.
pub struct Outcome {
    pub ending: Ending,
    /// Whose doing the end was; [`Cause::Unhealthy`]: psdock stopped the
    /// command because its health check made it `unhealthy`
    /// (`RunSpec::stop_when_unhealthy`).
    pub cause: Cause,
    /// psdock was told to stop (SIGINT, SIGTERM): no attempt follows.
    pub stopped: bool,
    /// The sink's destination, drained and still open, if its pump kept one.
    pub held: Option<Box<dyn Held>>,
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

/// Runs until the container's init has exited and its output is delivered
/// (the notifications go on beside it, across attempts); returns how it
/// ended. `crashed` is the caller's to queue, once it knows whether another
/// attempt follows.
pub fn supervise(
    rt: &tokio::runtime::Runtime,
    container: &Container,
    signals: &Signals,
    kill_timeout: Option<Duration>,
    stdio: Option<Transfer>,
    lifecycle: &mut Lifecycle,
    watches: Watches<'_, '_>,
) -> io::Result<Outcome> {
    let Watches {
        health: mut monitor,
        mut oom,
    } = watches;
    let systemd = lifecycle.systemd();
    let (events, ready, deliveries) = lifecycle.start(container.pid);
    // The command runs: what start-up ran need not stay resident.
    crate::footprint::release_startup_code();
    if let Some(m) = &monitor {
        events.health(m.health(), false);
    }
    let run = deliveries.beside(async {
        let pidfd = container.pidfd.as_raw_fd();
        // The signals psdock sent the container (bit N for signal N): one
        // that ended it was not the command's own failure.
        let sent = std::cell::Cell::new(0u128);
        let send = |pidfd: RawFd, sig: i32| {
            sent.set(sent.get() | 1 << sig);
            send(pidfd, sig);
        };
        // Told to stop (SIGINT, SIGTERM): no attempt follows. A hang-up or
        // an unhealthy container ends this attempt only.
        let stopped = std::cell::Cell::new(false);
        let mut cause = Cause::Own;
        let mut held = None;
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
        // Set when psdock ended the container for an OOM kill (`-oom kill`
        // or `restart`).
        let oom_ended = std::cell::Cell::new(None);
        let on_oom = |oom: &mut crate::cgroup::Oom, events: &mut lifecycle::Events| {
            let Some(kills) = oom.check() else {
                return false;
            };
            events.oom(kills);
            if oom.strategy() != OomStrategy::Notify {
                oom.kill_all();
                oom_ended.set(Some(oom.strategy()));
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
            if container.init || signals::handles(container.pid.as_raw(), sig) {
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
                stopped.set(true);
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
                    match end {
                        PumpEnd::Drained(h) => held = h,
                        PumpEnd::PeerGone(e) => {
                            if !is_hangup(&e) {
                                eprintln!("psdock: {}", crate::stdio::pump::failure(&e));
                            }
                            hang_up(&mut deadline);
                        }
                    }
                }
                health = async { monitor.as_mut().expect("guarded").next().await }, if monitor.is_some() && !unhealthy => {
                    // A first `healthy` that makes the command ready goes out
                    // as `running`, which carries it.
                    let readies = !running && ready_done && health == Health::Healthy;
                    events.health(health, !readies);
                    if health == Health::Unhealthy && monitor.as_ref().is_some_and(|m| m.stop_when_unhealthy) {
                        unhealthy = true;
                        cause = Cause::Unhealthy;
                        // Stopped as a SIGTERM to psdock would, but the
                        // restart policy goes on.
                        let told = stopped.get();
                        deliver(libc::SIGTERM, &mut deadline);
                        stopped.set(told);
                    }
                }
                guard = async { oomfd.as_ref().expect("guarded").readable().await }, if oomfd.is_some() => {
                    guard?.clear_ready();
                    let o = oom.as_deref_mut().expect("watched");
                    if !on_oom(o, events) {
                        oom_recheck = Some((Instant::now() + OOM_RECHECK, OOM_RECHECKS));
                    }
                }
                _ = tokio::time::sleep_until(oom_recheck.map_or_else(Instant::now, |r| r.0)), if oom_recheck.is_some() => {
                    let o = oom.as_deref_mut().expect("watched");
                    oom_recheck = match oom_recheck {
                        _ if on_oom(o, events) => None,
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
        // What the command wrote before it ended is delivered. Once psdock
        // is told to stop, a sink that cannot take it (a full disk, a peer
        // that does not read) gets DRAIN more, and a second stop signal ends
        // the wait at once.
        if let Some(mut pump) = pump {
            let mut give_up = stopping.get().then(|| Instant::now() + DRAIN);
            let delivered = loop {
                tokio::select! {
                    biased;
                    end = &mut pump => {
                        if let PumpEnd::Drained(h) = end {
                            held = h;
                        }
                        break true;
                    }
                    guard = sigfd.readable() => {
                        let mut guard = guard?;
                        let mut stop = false;
                        while let Some(sig) = signals.next()? {
                            stop |= sig == libc::SIGINT || sig == libc::SIGTERM;
                        }
                        guard.clear_ready();
                        if stop {
                            stopped.set(true);
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
        // Kills that came with the end, before the cgroup goes.
        if let Some(o) = oom.as_deref_mut() {
            if let Some(kills) = o.check() {
                events.oom(kills);
            }
        }
        if let (Cause::Own, Ending::Signaled(sig)) = (cause, ending) {
            if sig < 128 && sent.get() & 1 << sig != 0 {
                cause = Cause::Psdock;
            }
        }
        match oom_ended.get() {
            // `-oom kill` ends the service; `restart` leaves it to the policy.
            Some(OomStrategy::Kill) => stopped.set(true),
            Some(_) => cause = Cause::Oom,
            None => {}
        }
        Ok(Outcome {
            ending,
            cause,
            stopped: stopped.get(),
            held,
        })
    });
    rt.block_on(sd_notify::watching(systemd.as_deref(), run))
}
/// Waits `delay` with the notifications going on beside it; `false` if
/// psdock was told to stop meanwhile, which ends the wait at once.
pub fn wait(
    rt: &tokio::runtime::Runtime,
    signals: &Signals,
    delay: Duration,
    lifecycle: &mut Lifecycle,
) -> io::Result<bool> {
    let slept = until_stopped(rt, signals, lifecycle, async {
        tokio::time::sleep(delay).await
    })?;
    Ok(slept.is_some())
}

/// Runs `work` with the notifications going on beside it, while no
/// container runs; `None` if psdock was told to stop (SIGINT, SIGTERM)
/// first. Other signals have no container to go to and are dropped.
pub fn until_stopped<T>(
    rt: &tokio::runtime::Runtime,
    signals: &Signals,
    lifecycle: &mut Lifecycle,
    work: impl std::future::Future<Output = T>,
) -> io::Result<Option<T>> {
    let systemd = lifecycle.systemd();
    let waiting = lifecycle.deliveries().beside(async {
        // SAFETY: the signalfd is owned by our caller and outlives this
        // registration, which ends with this block.
        let sigfd = unsafe {
            AsyncFd::register_with_interest(Fd(signals.as_raw_fd()), Interest::READABLE)?
        };
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                guard = sigfd.readable() => {
                    let mut guard = guard?;
                    while let Some(sig) = signals.next()? {
                        if sig == libc::SIGINT || sig == libc::SIGTERM {
                            return Ok(None);
                        }
                    }
                    guard.clear_ready();
                }
                out = &mut work => return Ok(Some(out)),
            }
        }
    });
    // systemd's watchdog is fed between attempts too.
    rt.block_on(sd_notify::watching(systemd.as_deref(), waiting))
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
