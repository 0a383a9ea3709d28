//! The run's lifecycle events, `starting`, `running` and `crashed`, and their
//! delivery to the notifier: each exactly once and in that order, one request
//! at a time, never in the command's way.
//!
//! Under systemd (`NOTIFY_SOCKET`), the same moments are told to it too
//! (`crate::sd_notify`): `starting` with psdock's pid, `running` as `READY=1`,
//! the end as `STOPPING=1`.
//!
//! `starting` is queued just before the container is spawned and goes out from
//! the supervisor's runtime, so the command never waits for it. `running`
//! follows once the command was executed, or, with `-bind-port`, once the port
//! probe sees the port listened on. `crashed` is queued when the command has
//! ended, after which the deliveries still outstanding get one timeout to
//! finish: a dead or hanging hook delays psdock's exit by at most that and
//! never changes its exit code.
//!
//! With a health check, `running` also waits for the first `healthy`; any
//! other change of the health state is a `health` event between `running`
//! (or `starting`) and `crashed`, and every event from `running` on carries
//! the state ([`crate::health`]).

//!
//! Under `-restart` every attempt sends its own three, `seq` counting on
//! across them: the deliveries run beside each attempt and each wait between
//! two, and get their timeout once, after the last.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::host::Host;
use crate::plugin::{Attempt, Delivery, Event, Exit, Kind, Notifier, PortProbe, Registry, State};
use crate::sd_notify::SdNotify;
use crate::spec::RunSpec;
use crate::supervisor::Ending;

/// `-web-hook-timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per event before it is given up: network errors and server errors are
/// often over within a few seconds.
const ATTEMPTS: u32 = 5;
/// The wait before the second try; it doubles before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Everything a run tells the outside world, set up before anything is created.
pub struct Lifecycle {
    events: Events,
    deliveries: Deliveries,
    probe: Option<(Box<dyn PortProbe>, u16)>,
}

/// The sending side: numbers and stamps each event.
pub struct Events {
    id: Rc<str>,
    seq: u32,
    /// The restarts so far, with a restart policy; `None` without one, so
    /// that the events read as they always did.
    restarts: Option<u32>,
    tx: Option<mpsc::UnboundedSender<Event>>,
    /// systemd, when psdock runs as a `Type=notify` service.
    systemd: Option<Rc<SdNotify>>,
    /// Carried by the events from the first health state on.
    health: Option<crate::health::Health>,
}

/// The delivering side: one event at a time, in order, for as long as the
/// run lasts, across attempts.
pub struct Deliveries {
    worker: Option<std::pin::Pin<Box<dyn Future<Output = ()>>>>,
    trying: Trying,
    timeout: Duration,
}

impl Lifecycle {
    /// `notifier`: where events go and how long one request may take (none:
    /// nowhere). `probe`: what decides `running` with `-bind-port`.
    pub fn new(
        notifier: Option<(Box<dyn Delivery>, Duration)>,
        probe: Option<(Box<dyn PortProbe>, u16)>,
    ) -> Self {
        let trying = Trying::default();
        let (tx, worker, timeout) = match notifier {
            Some((delivery, timeout)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let worker: std::pin::Pin<Box<dyn Future<Output = ()>>> =
                    Box::pin(run_deliveries(delivery, rx, timeout, trying.clone()));
                (Some(tx), Some(worker), timeout)
            }
            None => (None, None, DEFAULT_TIMEOUT),
        };
        Self {
            events: Events {
                id: "".into(),
                seq: 0,
                restarts: None,
                tx,
                systemd: None,
                health: None,
            },
            deliveries: Deliveries {
                worker,
                trying,
                timeout,
            },
            probe,
        }
    }

    /// Picks the notifier (when `-web-hook` is given) and the port probe (with
    /// `-bind-port`: the one `-port-probe` names, else the first usable) and
    /// opens the notifier, so that any error is psdock's before anything exists.
    pub fn from_spec(spec: &RunSpec, host: &Host) -> Result<Self, Error> {
        let notifier = match &spec.notify {
            Some((notify, timeout)) => {
                let (_, notifier) = Registry::<dyn Notifier>::new(Kind::Notify)
                    .auto(host)
                    .map_err(|e| Error::PickFor("-web-hook", e))?;
                Some((notifier.open(notify).map_err(Error::Notify)?, *timeout))
            }
            None => None,
        };
        let probes = Registry::<dyn PortProbe>::new(Kind::Ports);
        let probe = match &spec.bind_port {
            Some((port, Some(name))) => {
                let probe = probes
                    .by_name(name, host)
                    .map_err(|e| Error::PickFor("-port-probe", e))?;
                Some((probe, *port))
            }
            Some((port, None)) => {
                let (_, probe) = probes
                    .auto(host)
                    .map_err(|e| Error::PickFor("-bind-port", e))?;
                Some((probe, *port))
            }
            None => None,
        };
        let mut lifecycle = Self::new(notifier, probe);
        lifecycle.events.systemd = SdNotify::from_env()?.map(Rc::new);
        Ok(lifecycle)
    }

    /// Queues `starting` for the container `id`; it is sent once the
    /// supervisor runs. `restarts`: how many attempts came before this one,
    /// when a restart policy is set.
    pub fn starting(&mut self, id: &str, restarts: Option<u32>) {
        if *self.events.id != *id {
            self.events.id = id.into();
        }
        self.events.restarts = restarts;
        // A new attempt has no health yet: the last one's `unhealthy` is not its.
        self.events.health = None;
        if let Some(systemd) = &self.events.systemd {
            systemd.starting();
        }
        self.events.send(State::Starting);
    }

    /// Queues `crashed`; `will_restart` says whether another attempt follows
    /// (sent only with a restart policy). When none does, systemd hears that
    /// psdock is stopping.
    pub fn crashed(&mut self, exit: Exit, will_restart: bool) {
        self.events.crashed(exit, will_restart);
    }

    /// The wait before the next attempt has begun: systemd's status says so.
    pub fn restarting(&self, delay: Duration) {
        if let Some(systemd) = &self.events.systemd {
            systemd.restarting(delay);
        }
    }

    /// psdock was told to stop between attempts: no attempt follows.
    pub fn stopping(&self) {
        self.events.stopping();
    }

    /// systemd's notifier, for the watchdog's pings beside the run.
    pub fn systemd(&self) -> Option<Rc<SdNotify>> {
        self.events.systemd.clone()
    }

    /// The container could not be started after `starting` was queued (the
    /// command was not found, a step of its setup failed): `crashed` with
    /// psdock's exit code, and both delivered within one timeout.
    pub fn failed_start(mut self, rt: &tokio::runtime::Runtime, code: i32) {
        if self.deliveries.worker.is_some() {
            self.events.crashed(Exit::Code(code), false);
        }
        self.finish(rt);
    }

    /// Splits for the supervisor: the events to send, the future that ends
    /// once the command is running, and the deliveries to run beside it all.
    pub fn start(
        &mut self,
        init: Pid,
    ) -> (&mut Events, impl Future<Output = ()> + '_, &mut Deliveries) {
        (
            &mut self.events,
            ready(self.probe.as_mut(), init),
            &mut self.deliveries,
        )
    }

    /// The deliveries, to run beside a wait between attempts.
    pub fn deliveries(&mut self) -> &mut Deliveries {
        &mut self.deliveries
    }

    /// No event follows: the deliveries still outstanding get one timeout.
    pub fn finish(self, rt: &tokio::runtime::Runtime) {
        let Lifecycle {
            events, deliveries, ..
        } = self;
        drop(events);
        if deliveries.worker.is_some() {
            rt.block_on(alongside(deliveries, async {}));
        }
    }
}

impl Events {
    /// The one place an attempt becomes `running`: the hook's event and
    /// systemd's `READY=1` go together.
    pub fn running(&mut self) {
        if let Some(systemd) = &self.systemd {
            systemd.ready();
        }
        self.send(State::Running);
    }

    fn crashed(&mut self, exit: Exit, will_restart: bool) {
        if !will_restart {
            self.stopping();
        }
        let will_restart = self.restarts.map(|_| will_restart);
        self.send_with(State::Crashed(exit), will_restart);
    }

    /// psdock was told to stop (SIGINT, SIGTERM), or the command has ended
    /// and no attempt follows: systemd hears it once.
    pub fn stopping(&self) {
        if let Some(systemd) = &self.systemd {
            systemd.stopping();
        }
    }

    /// Sets the health state the next events carry; `notify`: send a
    /// `health` event for it now.
    pub fn health(&mut self, health: crate::health::Health, notify: bool) {
        self.health = Some(health);
        if notify {
            self.send(State::Health);
        }
    }

    /// The kernel's OOM killer ended a process of the container: `kills` so far.
    pub fn oom(&mut self, kills: u64) {
        self.send(State::Oom(kills));
    }

    fn send(&mut self, state: State) {
        self.send_with(state, None);
    }

    fn send_with(&mut self, state: State, will_restart: Option<bool>) {
        self.seq += 1;
        if let Some(tx) = &self.tx {
            // The receiver lives as long as the run: a failed send cannot happen
            // before the end, and then there is nobody left to tell.
            let _ = tx.send(Event {
                id: self.id.clone(),
                seq: self.seq,
                time: SystemTime::now(),
                state,
                health: self.health,
                restarts: self.restarts,
                will_restart,
            });
        }
    }
}

impl From<Ending> for Exit {
    fn from(ending: Ending) -> Self {
        match ending {
            Ending::Exited(code) => Exit::Code(code),
            Ending::Signaled(sig) => Exit::Signal(sig),
            // What ended the command was psdock's SIGKILL.
            Ending::Translated(_) => Exit::Signal(libc::SIGKILL),
        }
    }
}

/// Ends once the command counts as running: at once without a probe (the
/// command was executed when the supervisor starts), otherwise once the probe
/// sees the port listened on. Never ends if it never is; the supervisor stops
/// polling it when the command ends.
async fn ready(probe: Option<&mut (Box<dyn PortProbe>, u16)>, init: Pid) {
    let Some((probe, port)) = probe else {
        return;
    };
    let port = *port;
    let interval = probe.interval();
    let mut warned = false;
    loop {
        match probe.listening(init, port).await {
            Ok(true) => return,
            Ok(false) => {}
            // The command has just ended, before the supervisor saw it: no
            // one listens, and its gone /proc entries are no probe failure.
            Err(_) if crate::proctree::has_ended(init) => {}
            Err(e) => {
                // Once: a probe that fails keeps being asked (the failure may pass)
                // but does not flood the command's stderr.
                if !std::mem::replace(&mut warned, true) {
                    eprintln!("psdock: -bind-port {port}: {e}");
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Runs `main` with the deliveries beside it. Once `main` is done (and has
/// dropped its [`Events`]), the deliveries still outstanding get one timeout.
pub async fn alongside<T>(mut deliveries: Deliveries, main: impl Future<Output = T>) -> T {
    let out = deliveries.beside(main).await;
    let Some(delivering) = deliveries.worker else {
        return out;
    };
    let grace = deliveries.timeout;
    if tokio::time::timeout(grace, delivering).await.is_err() {
        let (status, why) = deliveries.trying.take().unwrap_or_default();
        eprintln!(
            "psdock: -web-hook: {status:?} and what follows not delivered within \
             -web-hook-timeout {}s of the end: {why}",
            grace.as_secs()
        );
    }
    out
}

/// Drops the runtime without waiting for its blocking threads: a name look-up
/// for the hook, or a port probe's command, may hang there past the time
/// allowed at exit, and psdock's exit must not wait for them.
pub fn leave(rt: tokio::runtime::Runtime) {
    rt.shutdown_background();
}

/// The event being delivered and why its last try failed, if it did.
type Trying = Rc<RefCell<Option<(&'static str, String)>>>;

impl Deliveries {
    /// Runs `main` with the deliveries beside it, until `main` is done.
    pub async fn beside<T>(&mut self, main: impl Future<Output = T>) -> T {
        let mut main = pin!(main);
        loop {
            let Some(worker) = self.worker.as_mut() else {
                return main.await;
            };
            tokio::select! {
                out = &mut main => return out,
                () = worker => self.worker = None,
            }
        }
    }
}

async fn run_deliveries(
    delivery: Box<dyn Delivery>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    timeout: Duration,
    trying: Trying,
) {
    while let Some(event) = rx.recv().await {
        let status = event.state.as_str();
        *trying.borrow_mut() = Some((status, "no answer yet".into()));
        deliver(&*delivery, &event, timeout, &trying).await;
    }
}

async fn deliver(delivery: &dyn Delivery, event: &Event, timeout: Duration, trying: &Trying) {
    let status = event.state.as_str();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let why = match tokio::time::timeout(timeout, delivery.attempt(event)).await {
            Ok(Attempt::Delivered) => return,
            Ok(Attempt::Refused(e)) => {
                eprintln!("psdock: -web-hook: {status:?} refused: {e}");
                return;
            }
            Ok(Attempt::Failed(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", timeout.as_secs()),
        };
        if attempt == ATTEMPTS {
            eprintln!("psdock: -web-hook: {status:?} not delivered after {ATTEMPTS} tries: {why}");
            return;
        }
        *trying.borrow_mut() = Some((status, why));
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{LocalFuture, PluginError};

    /// Records what it was given; answers from a script, then `Delivered`.
    struct Script {
        answers: RefCell<Vec<fn() -> Attempt>>,
        seen: Rc<RefCell<Vec<(u32, State)>>>,
    }

    impl Delivery for Script {
        fn attempt<'a>(&'a self, event: &'a Event) -> LocalFuture<'a, Attempt> {
            self.seen.borrow_mut().push((event.seq, event.state));
            let next = self.answers.borrow_mut().pop();
            Box::pin(async move { next.map_or(Attempt::Delivered, |f| f()) })
        }
    }

    fn failed() -> Attempt {
        Attempt::Failed(PluginError::from("HTTP 500"))
    }
    fn refused() -> Attempt {
        Attempt::Refused(PluginError::from("HTTP 404"))
    }

    fn run_with(answers: Vec<fn() -> Attempt>) -> Vec<(u32, State)> {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let script = Script {
            answers: RefCell::new(answers.into_iter().rev().collect()),
            seen: seen.clone(),
        };
        let life = Lifecycle::new(Some((Box::new(script), DEFAULT_TIMEOUT)), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let mut life = life;
        life.starting("psdock_0000000", None);
        let (events, ready, deliveries) = life.start(Pid::from_raw(1));
        rt.block_on(deliveries.beside(async move {
            ready.await;
            events.running();
        }));
        life.crashed(Exit::Signal(9), false);
        life.finish(&rt);
        let out = seen.borrow().clone();
        out
    }

    #[test]
    fn events_go_in_order_and_failures_are_retried_but_refusals_are_not() {
        let seen = run_with(vec![failed, failed, refused]);
        let crashed = State::Crashed(Exit::Signal(9));
        assert_eq!(
            seen,
            [
                (1, State::Starting),
                (1, State::Starting),
                (1, State::Starting),
                (2, State::Running),
                (3, crashed),
            ]
        );
    }

    #[test]
    fn seq_counts_on_across_attempts_and_deliveries_go_on_between_them() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let script = Script {
            answers: RefCell::new(vec![failed]),
            seen: seen.clone(),
        };
        let mut life = Lifecycle::new(Some((Box::new(script), DEFAULT_TIMEOUT)), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        for n in 0..2 {
            life.starting("psdock_0000000", Some(n));
            let (events, ready, deliveries) = life.start(Pid::from_raw(1));
            rt.block_on(deliveries.beside(async move {
                ready.await;
                events.running();
            }));
            life.crashed(Exit::Code(1), n == 0);
            // The wait between attempts: the retry of `starting` happens here.
            let wait = async { tokio::time::sleep(Duration::from_secs(1)).await };
            rt.block_on(life.deliveries().beside(wait));
        }
        life.finish(&rt);
        let seqs: Vec<u32> = seen.borrow().iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [1, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn retries_are_bounded() {
        let seen = run_with(vec![failed; 7]);
        // Five tries for the first event, then the next events go on.
        assert_eq!(seen.iter().filter(|(seq, _)| *seq == 1).count(), 5);
        assert_eq!(seen.last(), Some(&(3, State::Crashed(Exit::Signal(9)))));
    }
}
