//! One run, start to end, in the order of the architecture card: parse and
//! validate, pick plug-ins, set up, spawn, supervise, tear down. The spawn
//! and the supervision are one attempt ([`Run::once`]), which
//! `crate::service` repeats under `-restart`.

use std::ffi::OsString;

use crate::cli::{self, Parsed};
use crate::container::{self, Plan};
use crate::error::Error;
use crate::host::Host;
use crate::lifecycle::{self, Lifecycle};
use crate::plugin::{
    listing, Kind, Network, NetworkDriver, Registry, RootfsDriver, Stdio, StdioSink,
};
use crate::rootfs;
use crate::signals::Signals;
use crate::spec::RunSpec;
use crate::state;
use crate::supervisor;

/// psdock's `main`: returns the process exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    crate::error::exit_code("psdock", run(argv))
}

fn run(argv: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let args = match cli::parse(argv)? {
        Parsed::Run(args) => args,
        Parsed::Print(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    if args.list_drivers {
        print!(
            "{}",
            listing::render(&listing::list(&Host::read()), args.json)
        );
        return Ok(0);
    }
    crate::error::require_root()?;
    // Held from here on: a signal that arrives during set-up cannot kill psdock
    // halfway through a mount. SIGINT and SIGTERM end the set-up where it
    // stands (unpacking an image, or right before the command starts:
    // `signals::stop_pending`), undone by the guards; the others reach the
    // command once it runs.
    let signals = Signals::block().map_err(Error::Signals)?;
    let host = Host::read();
    let rootfs_drivers = Registry::<dyn RootfsDriver>::new(Kind::Rootfs);
    let driver = match &args.rootfs_driver {
        Some(name) => rootfs_drivers.by_name(name, &host)?,
        None => rootfs_drivers.auto(&host)?.1,
    };
    let spec = RunSpec::from_args(*args, &*driver)?;
    if spec.health.is_some() {
        // Its checks enter a container where other processes run, as
        // psdock-exec does: from a binary they cannot reach (crate::seal).
        // The second start finds the image's layers in the cache.
        crate::seal::reexec_sealed_with(std::env::args_os()).map_err(Error::Seal)?;
    }
    let sink = Registry::<dyn StdioSink>::new(Kind::Stdio)
        .by_name(&spec.stdio.scheme, &host)
        .map_err(|e| Error::StdioPick(spec.stdio.url.clone(), e))?;
    let net = Registry::<dyn NetworkDriver>::new(Kind::Net)
        .by_name(&spec.net.mode, &host)
        .map_err(|e| Error::NetPick(spec.net.mode.clone(), e))?;
    let mut flags = sink.flags().to_vec();
    if spec.notify.is_some() {
        flags.push("-tls-ca"); // https hooks take it too
    }
    spec.stdio
        .check_flags(&flags)
        .map_err(crate::spec::SpecError::from)?;
    let lifecycle = Lifecycle::from_spec(&spec, &host)?;
    // Single-threaded: the container is still cloned from a one-thread psdock.
    let rt = supervisor::runtime().map_err(Error::Supervise)?;
    let stdio = rt.block_on(sink.open(&spec.stdio)).map_err(Error::Stdio)?;

    // Owns the rootfs from here on: torn down before the entry goes.
    let mut entry = state::Entry::create(&spec)?;
    let _ = spec.stdio.origin.id.set(entry.id().to_owned());
    entry.prepare(|| {
        rootfs::prepare(&*driver, spec.layers.dirs.clone(), &spec.rootfs, spec.upper)
    })?;
    // The network and the cgroup are the service's, not an attempt's: every
    // attempt joins the same namespace (same address, same published ports)
    // and the same cgroup. The network is given back before the entry goes.
    let network = {
        let _runtime = rt.enter();
        net.setup(&spec.net, entry.id(), &state::dir())
            .map_err(Error::Network)?
    };
    entry.network(network.info());
    let mut oom = None;
    if spec.limits.any() {
        let cgroup = entry.make_cgroup(&spec.limits)?;
        oom = Some(crate::cgroup::Oom::watch(cgroup, spec.limits.oom)?);
    }
    let run = Run {
        spec: &spec,
        rt: &rt,
        signals: &signals,
        sink: &*sink,
        driver: &*driver,
        network: &*network,
        oom: std::cell::RefCell::new(oom),
    };
    let code = crate::service::serve(&run, entry, lifecycle, stdio)?;
    drop(run);
    drop(network);
    lifecycle::leave(rt);
    Ok(code)
}

/// What every attempt of a run shares: made once, before the first.
pub struct Run<'a> {
    pub spec: &'a RunSpec,
    pub rt: &'a tokio::runtime::Runtime,
    pub signals: &'a Signals,
    pub sink: &'a dyn StdioSink,
    pub driver: &'a dyn RootfsDriver,
    pub network: &'a dyn Network,
    /// The cgroup's OOM watch, with limits.
    pub oom: std::cell::RefCell<Option<crate::cgroup::Oom>>,
}

impl Run<'_> {
    /// One attempt on the rootfs `entry` holds: spawn the container with
    /// `stdio`, supervise it to its end. `restarts`: the attempts before this
    /// one, with a restart policy. A container that cannot be started is
    /// psdock's error, after its `crashed` was queued.
    pub fn once(
        &self,
        entry: &mut state::Entry,
        lifecycle: &mut Lifecycle,
        stdio: Stdio,
        restarts: Option<u32>,
    ) -> Result<supervisor::Outcome, Error> {
        let Stdio { child, tty, pump } = stdio;
        let raw = |i: usize| child[i].as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        let mut plan = Plan::new(self.spec, [raw(0), raw(1), raw(2)]);
        plan.tty = tty;
        plan.netns = self
            .network
            .namespace()
            .map(|ns| std::os::fd::AsRawFd::as_raw_fd(&ns));
        // Only the network drivers make a namespace of the container's own.
        #[cfg(any(feature = "net-none", feature = "net-bridge"))]
        if plan.netns.is_some() && plan.resolv_conf.is_some() {
            // Written for each attempt, as the host's may have changed.
            let sibling = rootfs::sibling_of(&self.spec.rootfs);
            plan.resolv_conf =
                Some(crate::net::resolv::write(&sibling).map_err(|e| Error::Network(e.into()))?);
        }
        if let Some(sig) = crate::signals::stop_pending() {
            return Err(Error::Stopped(sig));
        }
        lifecycle.starting(entry.id(), restarts);
        if let (true, Some(cgroup)) = (plan.init, entry.cgroup()) {
            plan.process.cgroup_procs = cgroup.procs_files();
        }
        let container = match container::spawn(self.spec, &plan, entry.cgroup()) {
            Ok(c) => c,
            Err(e) => {
                let e = Error::from(e);
                lifecycle.crashed(crate::plugin::Exit::Code(e.exit_code()), false);
                return Err(e);
            }
        };
        drop(plan);
        entry.started(container.pid)?;
        // psdock's copies of the command's pipe ends: the pump sees end of file
        // only once the command's own are closed too.
        drop(child);
        let transfer =
            supervisor::start_pump(self.rt, pump, &container).map_err(Error::Supervise)?;
        let mut monitor = match &self.spec.health {
            Some(health) => Some(
                crate::health::Monitor::new(health, self.spec, &container, entry)
                    .map_err(Error::Supervise)?,
            ),
            None => None,
        };
        let mut oom = self.oom.borrow_mut();
        let outcome = supervisor::supervise(
            self.rt,
            &container,
            self.signals,
            self.spec.kill_timeout,
            transfer,
            lifecycle,
            supervisor::Watches {
                health: monitor.as_mut(),
                oom: oom.as_mut(),
            },
        )
        .map_err(Error::Supervise)?;
        drop(monitor);
        if let Some(oom) = oom.as_ref() {
            oom.report(outcome.ending.exit_code());
        }
        Ok(outcome)
    }

    /// Readies the next attempt: a fresh rootfs at the same ROOTFS, and the
    /// sink again: what the last attempt's pump held (the log goes on), or
    /// the sink opened afresh (a peer that went away is dialed again).
    pub fn renew(
        &self,
        entry: &mut state::Entry,
        held: Option<Box<dyn crate::plugin::Held>>,
    ) -> Result<Stdio, Error> {
        entry.restart(|rootfs| rootfs.renew(self.driver, self.spec.layers.dirs.clone()))?;
        match held {
            Some(held) => held.reopen().map_err(|e| Error::Stdio(e.into())),
            None => self
                .rt
                .block_on(self.sink.open(&self.spec.stdio))
                .map_err(Error::Stdio),
        }
    }
}
