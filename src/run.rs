//! One run, start to end, in the order of the architecture card: parse and
//! validate, pick plug-ins, set up, spawn, supervise, tear down.

use std::ffi::OsString;

use crate::cli::{self, Parsed};
use crate::container::{self, Plan};
use crate::error::Error;
use crate::host::Host;
use crate::lifecycle::{self, Lifecycle};
use crate::plugin::{listing, Kind, NetworkDriver, Registry, RootfsDriver, Stdio, StdioSink};
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
    let mut lifecycle = Lifecycle::from_spec(&spec, &host)?;
    // Single-threaded: the container is still cloned from a one-thread psdock.
    let rt = supervisor::runtime().map_err(Error::Supervise)?;
    let Stdio { child, tty, pump } = rt.block_on(sink.open(&spec.stdio)).map_err(Error::Stdio)?;

    // Owns the rootfs from here on: torn down before the entry goes.
    let mut entry = state::Entry::create(&spec)?;
    entry.prepare(|| {
        rootfs::prepare(&*driver, spec.layers.dirs.clone(), &spec.rootfs, spec.upper)
    })?;
    // Given back before the entry goes (declared after it).
    let network = {
        let _runtime = rt.enter();
        net.setup(&spec.net, entry.id(), &state::dir())
            .map_err(Error::Network)?
    };
    entry.network(network.info());
    let raw = |i: usize| child[i].as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mut plan = Plan::new(&spec, [raw(0), raw(1), raw(2)]);
    plan.tty = tty;
    plan.netns = network
        .namespace()
        .map(|ns| std::os::fd::AsRawFd::as_raw_fd(&ns));
    if plan.netns.is_some() && plan.resolv_conf.is_some() {
        let sibling = rootfs::sibling_of(&spec.rootfs);
        plan.resolv_conf =
            Some(crate::net::resolv::write(&sibling).map_err(|e| Error::Network(e.into()))?);
    }
    if let Some(sig) = crate::signals::stop_pending() {
        return Err(Error::Stopped(sig));
    }
    lifecycle.starting(entry.id());
    let container = match container::spawn(&spec, &plan) {
        Ok(c) => c,
        Err(e) => {
            let e = Error::from(e);
            lifecycle.failed_start(&rt, e.exit_code());
            return Err(e);
        }
    };
    drop(plan);
    entry.started(container.pid)?;
    // psdock's copies of the command's pipe ends: the pump sees end of file
    // only once the command's own are closed too.
    drop(child);
    let transfer = supervisor::start_pump(&rt, pump, &container).map_err(Error::Supervise)?;
    let ending = supervisor::supervise(
        &rt,
        &container,
        &signals,
        spec.kill_timeout,
        transfer,
        lifecycle,
    )
    .map_err(Error::Supervise)?;
    drop(container);
    drop(network);
    drop(entry);
    lifecycle::leave(rt);
    Ok(ending.exit_code())
}
