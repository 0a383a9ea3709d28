use std::ffi::OsString;

use clap::{ArgAction, Parser};

use super::ProcessArgs;

/// psdock-exec's usage line, also named when the command is missing.
pub const EXEC_USAGE: &str = "psdock-exec ID [OPTIONS] COMMAND [ARGS...]";

/// Run another command inside a running psdock container: in its mount, PID,
/// UTS and IPC namespaces and its root, hardened as the container's own
/// command is. Exits with the command's exit code.
///
/// Flags are read up to the first word after ID that is not a flag; that word
/// and everything after it are the command.
#[derive(Debug, Parser)]
#[command(
    name = "psdock-exec",
    version,
    override_usage = EXEC_USAGE,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct ExecArgs {
    /// The container's id, as psdock-ls shows it
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub process: ProcessArgs,

    /// Print the version
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    pub version: (),

    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,

    /// SIGKILL the command this many seconds after the first SIGINT or SIGTERM
    /// to psdock-exec, or a hang-up; -1 for never [default: 10]
    #[arg(long = "kill-timeout", value_name = "SECONDS", value_parser = super::args::kill_timeout, allow_negative_numbers = true)]
    pub kill_timeout: Option<super::KillTimeout>,
}
