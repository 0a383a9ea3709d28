//! psdock's own errors, and the one place that maps them to exit codes.

use crate::cli::CliError;
use crate::container::ContainerError;
use crate::plugin::PickError;
use crate::rootfs::RootfsError;
use crate::spec::SpecError;
use crate::state::StateError;

/// psdock's own failures: 125, as docker and podman use it.
pub const EXIT_PSDOCK: i32 = 125;
/// The command exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cli(#[from] CliError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Pick(#[from] PickError),
    /// A pick made for a flag (`-bind-port`, `-port-probe`, `-web-hook`).
    #[error("{0}: {1}")]
    PickFor(&'static str, PickError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Ls(#[from] crate::ls::LsError),
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// Sinks name the flag and value in their messages.
    #[error("{0}")]
    Stdio(crate::plugin::PluginError),
    #[error("-stdio {0}: {1}")]
    StdioPick(String, PickError),
    #[error("-net {0}: {1}")]
    NetPick(String, PickError),
    /// The network driver's own message names the flag.
    #[error("{0}")]
    Network(crate::plugin::PluginError),
    /// The notifier's own message names the flag and the value.
    #[error("{0}")]
    Notify(crate::plugin::PluginError),
    #[error("cannot set up signal forwarding: {0}")]
    Signals(std::io::Error),
    #[error("cannot supervise the container: {0}")]
    Supervise(std::io::Error),
    /// SIGINT or SIGTERM during set-up: psdock ends, as it would by the
    /// signal, before the command runs.
    #[error("stopped by {} before the command started", crate::signals::name(*.0))]
    Stopped(i32),
    #[error("must run as root")]
    NotRoot,
    #[error(transparent)]
    SdNotify(#[from] crate::sd_notify::SdNotifyError),
    /// A health check enters the container: psdock must run sealed first.
    #[error("-health-cmd: {0}")]
    Seal(crate::seal::SealError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

/// A system error's text alone, without io::Error's "(os error N)", as
/// psdock's one-line messages give it.
pub fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(n) => text
            .strip_suffix(&format!(" (os error {n})"))
            .map_or_else(|| text.clone(), str::to_owned),
        None => text,
    }
}

/// psdock mounts, makes namespaces and keeps its records in a directory only
/// root may read: as anyone else, that is the one thing to say, before the
/// first permission error on the way.
pub fn require_root() -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container(ContainerError::NotFound(_)) => EXIT_NOT_FOUND,
            Error::Container(ContainerError::NotExecutable { .. }) => EXIT_NOT_EXECUTABLE,
            Error::Stopped(sig)
            | Error::Spec(SpecError::ImageContent {
                source: crate::image::ImageError::Stopped(sig),
                ..
            }) => 128 + sig,
            _ => EXIT_PSDOCK,
        }
    }
}

/// The exit code of a run of psdock or a helper, with its error, if any,
/// printed on one line after the program's name.
pub fn exit_code(program: &str, result: Result<i32, Error>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {e}");
            e.exit_code()
        }
    }
}
