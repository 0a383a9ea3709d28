//! The command line: the original's Go-style flags (`-image`, `--image`, `-i`),
//! rewritten into clap's form before clap sees them, then parsed into [`Args`].

mod args;
mod compat;
mod exec;
mod health_args;
mod limit_args;
mod ls;
mod net_args;
mod notify_args;
mod process;
mod restart_args;
mod stdio_args;
mod values;

pub use args::{Args, KillTimeout};
pub use compat::{parse, parse_as, CliError, Parsed};
pub use exec::{ExecArgs, EXEC_USAGE};
pub use health_args::HealthArgs;
pub use limit_args::LimitArgs;
pub use ls::LsArgs;
pub use net_args::NetArgs;
pub use notify_args::NotifyArgs;
pub use process::ProcessArgs;
pub use restart_args::RestartArgs;
pub use stdio_args::StdioArgs;
pub use values::{duration, positive_duration};
