//! psdock-exec: run another command inside a running container, supervised as
//! psdock supervises its own (signals forwarded, exit code passed through).

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::cli::{self, ExecArgs, KillTimeout, Parsed};
use crate::container::{self, ProcessPlan};
use crate::error::Error;
use crate::host::Host;
use crate::image::ImageConfig;
use crate::lifecycle::Lifecycle;
use crate::plugin::{Kind, Registry, Stdio, StdioSink, StdioSpec};
use crate::signals::Signals;
use crate::spec::{container_user_file, ProcessSpec};
use crate::state::{self, Listed, Status};
use crate::supervisor;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}: not a container id (psdock_ and 7 hex digits, as psdock-ls shows)")]
    BadId(String),
    #[error("{0}: no such container (psdock-ls lists the running ones)")]
    Unknown(String),
    #[error("{id}: unreadable state entry ({why})")]
    Broken { id: String, why: String },
    #[error("{id}: container is not running (it is {status})")]
    NotRunning { id: String, status: &'static str },
    #[error("no command given (usage: {})", cli::EXEC_USAGE)]
    NoCommand,
}

/// psdock-exec's `main`: returns the process exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    crate::error::exit_code("psdock-exec", run(argv))
}

fn run(argv: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let args = match cli::parse_as::<ExecArgs>(argv)? {
        Parsed::Run(args) => *args,
        Parsed::Print(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    let id = args.id;
    // As psdock's: a command that ignores SIGTERM and SIGHUP must not keep
    // psdock-exec forever.
    let kill_timeout = match args.kill_timeout {
        None => Some(crate::spec::DEFAULT_KILL_TIMEOUT),
        Some(KillTimeout::Seconds(s)) => Some(std::time::Duration::from_secs(s)),
        Some(KillTimeout::Never) => None,
    };
    if !state::is_id(&id) {
        return Err(ExecError::BadId(id).into());
    }
    // Said here, not by the shared spec, whose message shows psdock's usage.
    if args.command.is_empty() {
        return Err(ExecError::NoCommand.into());
    }
    crate::error::require_root()?;
    // As in psdock: held from the start, forwarded once the command runs.
    let signals = Signals::block().map_err(Error::Signals)?;
    let record = match state::find(&state::dir(), &id) {
        Some(Listed::Record(r)) => r,
        Some(Listed::Broken { id, why }) => return Err(ExecError::Broken { id, why }.into()),
        None => return Err(ExecError::Unknown(id).into()),
    };
    let not_running = |status: Status| ExecError::NotRunning {
        id: id.clone(),
        status: status.as_str(),
    };
    let status =
        state::status(&state::dir(), &record).ok_or_else(|| ExecError::Unknown(id.clone()))?;
    let init = match (status, record.init) {
        (Status::Running, Some(init)) => init,
        (status, _) => return Err(not_running(status).into()),
    };
    let pidfd = init.pidfd().map_err(|_| not_running(Status::Stopping))?;
    // The user is looked up in the container's own files, as it sees them.
    let root = PathBuf::from(format!("/proc/{}/root", init.pid));
    let user = args.process.user.as_deref();
    let passwd = container_user_file(&id, &root, "/etc/passwd", user)?;
    let group = container_user_file(&id, &root, "/etc/group", user)?;
    let spec = ProcessSpec::from_args(
        args.process,
        args.command,
        passwd,
        group,
        &ImageConfig::default(),
    )?;
    // psdock's own stdio, as psdock without -stdio: a terminal of the
    // container's when psdock-exec runs on one.
    let rt = supervisor::runtime().map_err(Error::Supervise)?;
    let sink = Registry::<dyn StdioSink>::new(Kind::Stdio).by_name("inherit", &Host::read())?;
    let Stdio {
        child: fds,
        tty,
        pump,
    } = rt
        .block_on(sink.open(&StdioSpec::default()))
        .map_err(Error::Stdio)?;
    let raw = |i: usize| fds[i].as_ref().map(AsRawFd::as_raw_fd);
    let mut plan = ProcessPlan::new(&spec, record.caps, [raw(0), raw(1), raw(2)]);
    // The container's own filter, as its record keeps it.
    plan.seccomp = crate::spec::seccomp_filter(&record.seccomp, record.caps)?;
    if let Some(path) = &record.created.cgroup {
        plan.cgroup_procs = crate::cgroup::Cgroup::open(path)?.procs_files();
    }
    if let Some(sig) = crate::signals::stop_pending() {
        return Err(Error::Stopped(sig));
    }
    let child = container::enter(init, &pidfd, &spec, &plan, tty.as_ref())?;
    drop(fds);
    let transfer = supervisor::start_pump(&rt, pump, &child).map_err(Error::Supervise)?;
    let outcome = supervisor::supervise(
        &rt,
        &child,
        &signals,
        kill_timeout,
        transfer,
        &mut Lifecycle::new(None, None),
        supervisor::Watches::default(),
    )
    .map_err(Error::Supervise)?;
    Ok(outcome.ending.exit_code())
}
