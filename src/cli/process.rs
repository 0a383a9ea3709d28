use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args};

/// The flags that shape the process itself, shared by psdock and psdock-exec.
#[derive(Debug, Clone, Default, Args)]
pub struct ProcessArgs {
    /// KEY=VALUE, or KEY to copy psdock's own value (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", action = ArgAction::Append, allow_hyphen_values = true)]
    pub env: Vec<OsString>,

    /// File of KEY=VALUE lines, `#` starts a comment (repeatable)
    #[arg(long = "env-file", value_name = "FILE", action = ArgAction::Append)]
    pub env_file: Vec<PathBuf>,

    /// Working directory of the command, entered as its user
    #[arg(short = 'w', long = "cwd", value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// user, uid, user:group or uid:gid, looked up in the image
    #[arg(long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
}
