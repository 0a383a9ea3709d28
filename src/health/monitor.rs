//! The health monitor: a source of the supervisor's loop that runs a check
//! every interval, counts the results as docker does, keeps the state record
//! up to date and says when the state changes.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::time::Instant;

use super::check::{Checker, Outcome, Running};
use super::status::{CheckRecord, Health, HealthRecord, Tracker};
use super::HealthSpec;
use crate::container::{Container, ContainerError};
use crate::spec::RunSpec;
use crate::state::Entry;

/// How often a check that cannot start yet is tried again while psdock has a
/// thread besides its own (a name look-up for the web hook): a process that
/// shares psdock's memory can only be started from a single thread.
const THREAD_WAIT: Duration = Duration::from_millis(10);

pub struct Monitor<'a> {
    checker: Checker,
    tracker: Tracker,
    interval: Duration,
    started: Instant,
    next_at: Instant,
    running: Option<Running>,
    /// When the check due now was first tried (see [`THREAD_WAIT`]).
    first_try: Option<(Instant, std::time::SystemTime)>,
    init_pidfd: &'a OwnedFd,
    init: nix::unistd::Pid,
    entry: &'a mut Entry,
    last_check: Option<CheckRecord>,
    /// Stop the container (SIGTERM, the kill timeout, SIGKILL) once it is
    /// unhealthy: set by a restart policy. Without one, docker only reports.
    pub stop_when_unhealthy: bool,
    warned: bool,
}

impl<'a> Monitor<'a> {
    /// For the container just started; the first check runs one interval
    /// from now. Records `starting`.
    pub fn new(
        health: &HealthSpec,
        run: &RunSpec,
        container: &'a Container,
        entry: &'a mut Entry,
    ) -> std::io::Result<Self> {
        let now = Instant::now();
        let mut monitor = Monitor {
            checker: Checker::new(health, run, container.pid, entry.cgroup())?,
            tracker: Tracker::new(health.retries, health.start_period),
            interval: health.interval,
            started: now,
            next_at: now + health.interval,
            running: None,
            first_try: None,
            init_pidfd: &container.pidfd,
            init: container.pid,
            entry,
            last_check: None,
            stop_when_unhealthy: run.stop_when_unhealthy(),
            warned: false,
        };
        monitor.write();
        Ok(monitor)
    }

    pub fn health(&self) -> Health {
        self.tracker.health
    }

    /// Runs checks until the state changes; returns the new state. Can be
    /// dropped and called again at any await: a running check is kept here.
    pub async fn next(&mut self) -> Health {
        loop {
            if let Some(running) = &mut self.running {
                let outcome = running.wait().await;
                self.running = None;
                if let Some(change) = self.count(outcome) {
                    return change;
                }
                if ended(self.init_pidfd, self.init) {
                    // The supervisor sees it too, and stops asking.
                    return std::future::pending().await;
                }
                continue;
            }
            tokio::time::sleep_until(self.next_at).await;
            let (tried, at) = *self
                .first_try
                .get_or_insert_with(|| (Instant::now(), std::time::SystemTime::now()));
            match self.checker.start(self.init_pidfd) {
                Ok(running) => {
                    self.first_try = None;
                    self.running = Some(running);
                }
                Err(ContainerError::Threads(_)) if tried.elapsed() < self.checker.timeout => {
                    self.next_at = Instant::now() + THREAD_WAIT;
                }
                Err(e) => {
                    self.first_try = None;
                    // Failed, and said in the record (not on stderr, the
                    // command's): the command not found is 127, as in a shell.
                    let e = crate::error::Error::from(e);
                    let why = format!("cannot start the health check: {e}");
                    if let Some(change) = self.count(Outcome::not_started(at, e.exit_code(), why)) {
                        return change;
                    }
                    if ended(self.init_pidfd, self.init) {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Counts a check's outcome, schedules the next and records both. A
    /// check that failed because the container was ending is not counted:
    /// its end is the news, not a health state.
    fn count(&mut self, outcome: Outcome) -> Option<Health> {
        if ended(self.init_pidfd, self.init) {
            return None;
        }
        let since_start = self.started.elapsed();
        let change = self.tracker.record(outcome.passed(), since_start);
        self.next_at = Instant::now() + self.interval;
        let time = |t| humantime::format_rfc3339_millis(t).to_string();
        self.last_check = Some(CheckRecord {
            start: time(outcome.start),
            end: time(outcome.end),
            exit_code: outcome.exit_code,
            output: outcome.output,
        });
        self.write();
        change
    }

    fn write(&mut self) {
        let record = HealthRecord {
            status: self.tracker.health,
            failing_streak: self.tracker.failing_streak,
            last_check: self.last_check.clone(),
        };
        if let Err(e) = self.entry.set_health(record) {
            // Once: the checks go on, and so does the web hook.
            if !std::mem::replace(&mut self.warned, true) {
                eprintln!("psdock: cannot record the health state: {e}");
            }
        }
    }
}

/// Whether the container's init is ending or has ended. Its pidfd becomes
/// readable only once every other process of its PID namespace (a check
/// included, which is psdock's to reap) is gone; its namespaces go first.
fn ended(pidfd: &OwnedFd, init: nix::unistd::Pid) -> bool {
    if crate::proctree::has_ended(init) {
        return true;
    }
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
}
