use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// Run one command in a throwaway container and supervise it until it ends.
///
/// Flags are read up to the first word that is not a flag; that word and
/// everything after it are the command.
#[derive(Debug, Parser)]
#[command(
    name = "psdock",
    version,
    override_usage = "psdock -i IMAGE -r ROOTFS [OPTIONS] COMMAND [ARGS...]",
    args_override_self = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Image directory the container starts from; never written to
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub image: Option<PathBuf>,

    /// Where the container's root file system is mounted; must be absent or empty
    #[arg(short = 'r', long = "rootfs", value_name = "ROOTFS")]
    pub rootfs: Option<PathBuf>,

    /// KEY=VALUE, or KEY to copy psdock's own value (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", action = ArgAction::Append, allow_hyphen_values = true)]
    pub env: Vec<OsString>,

    /// File of KEY=VALUE lines, `#` starts a comment (repeatable)
    #[arg(long = "env-file", value_name = "FILE", action = ArgAction::Append)]
    pub env_file: Vec<PathBuf>,

    /// Working directory of the command, entered as its user
    #[arg(short = 'w', long = "cwd", value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Container hostname [default: psdock]
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,

    /// user, uid, user:group or uid:gid, looked up in the image
    #[arg(long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// HOST:CONTAINER[:ro|rw] bind mount, rw by default (repeatable)
    #[arg(short = 'v', long = "bind-mount", value_name = "HOST:CONTAINER[:ro|rw]", action = ArgAction::Append)]
    pub bind_mount: Vec<OsString>,

    /// SIGKILL the command this many seconds after the first SIGINT or SIGTERM
    #[arg(long = "kill-timeout", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub kill_timeout: Option<u64>,

    /// PUT a JSON notice to this http(s) URL when the command is starting,
    /// running and no longer running (`crashed`)
    #[arg(long = "web-hook", value_name = "URL")]
    pub web_hook: Option<String>,

    /// Seconds one web hook request may take; also how long psdock waits at
    /// exit for notifications still outstanding [default: 10]
    #[arg(long = "web-hook-timeout", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub web_hook_timeout: Option<u64>,

    /// Sign each web hook body: header X-Psdock-Signature: sha256=HMAC-SHA256(SECRET, body) in hex
    #[arg(
        long = "web-hook-secret",
        value_name = "SECRET",
        allow_hyphen_values = true
    )]
    pub web_hook_secret: Option<String>,

    /// CA certificates (PEM) to trust for TLS instead of the system's
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// The command is running once it or a descendant listens on this TCP port
    #[arg(long = "bind-port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub bind_port: Option<u16>,

    /// How -bind-port is watched: netlink, procfs or lsof [default: the first usable]
    #[arg(long = "port-probe", value_name = "NAME")]
    pub port_probe: Option<String>,

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
}
