//! One run, start to end, in the order of the architecture card: parse and
//! validate, pick plug-ins, set up, spawn, supervise, tear down.

use std::ffi::OsString;

use crate::cli::{self, Parsed};
use crate::container::{self, Plan};
use crate::error::Error;
use crate::host::Host;
use crate::lifecycle::Lifecycle;
use crate::plugin::{Kind, Registry, RootfsDriver, StdioSink, StdioSpec};
use crate::rootfs;
use crate::signals::Signals;
use crate::spec::RunSpec;
use crate::supervisor;

/// psdock's `main`: returns the process exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    match run(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("psdock: {e}");
            e.exit_code()
        }
    }
}

fn run(argv: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let args = match cli::parse(argv)? {
        Parsed::Run(args) => args,
        Parsed::Print(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    // Held from here on: a signal that arrives during set-up reaches the command
    // once it runs, and cannot kill psdock halfway through a mount.
    let signals = Signals::block().map_err(Error::Signals)?;
    let spec = RunSpec::from_args(*args)?;
    let host = Host::read();
    let (_, driver) = Registry::<dyn RootfsDriver>::new(Kind::Rootfs).auto(&host)?;
    let sink = Registry::<dyn StdioSink>::new(Kind::Stdio).by_name("inherit", &host)?;
    let stdio = sink.open(&StdioSpec::default()).map_err(Error::Stdio)?;
    let mut lifecycle = Lifecycle::from_spec(&spec, &host, &crate::id::generate())?;

    let rootfs = rootfs::prepare(&*driver, vec![spec.image.clone()], &spec.rootfs)?;
    let raw = |i: usize| stdio.child[i].as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let plan = Plan::new(&spec, [raw(0), raw(1), raw(2)]);
    lifecycle.starting();
    let container = match container::spawn(&spec, &plan) {
        Ok(c) => c,
        Err(e) => {
            let e = Error::from(e);
            lifecycle.failed_start(e.exit_code());
            return Err(e);
        }
    };
    drop(plan);
    let ending = supervisor::supervise(&container, &signals, spec.kill_timeout, lifecycle)
        .map_err(Error::Supervise)?;
    drop(container);
    drop(rootfs);
    Ok(ending.exit_code())
}
