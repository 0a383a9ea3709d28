use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use super::ProcessArgs;

/// `-upper`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpperArg {
    Tmpfs,
    Disk,
}

impl From<UpperArg> for crate::rootfs::Upper {
    fn from(a: UpperArg) -> Self {
        match a {
            UpperArg::Tmpfs => Self::Tmpfs,
            UpperArg::Disk => Self::Disk,
        }
    }
}

/// `-kill-timeout`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillTimeout {
    Seconds(u64),
    /// -1, as the Go tool spells it.
    Never,
}

pub(crate) fn kill_timeout(value: &str) -> Result<KillTimeout, &'static str> {
    match value.parse::<i64>() {
        Ok(-1) => Ok(KillTimeout::Never),
        Ok(n) if n >= 1 => Ok(KillTimeout::Seconds(n as u64)),
        _ => Err("must be at least 1 or -1 for never"),
    }
}

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
    /// Image the container starts from, never written to: a directory, an OCI
    /// image layout, or a root file system tarball
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub image: Option<PathBuf>,

    /// Where the container's root file system is mounted; must be absent or empty
    #[arg(short = 'r', long = "rootfs", value_name = "ROOTFS")]
    pub rootfs: Option<PathBuf>,

    /// Where the container's writes go: tmpfs (in memory, up to half the RAM)
    /// or disk (beside ROOTFS, on its file system); thrown away either way
    #[arg(long = "upper", value_name = "WHERE", value_enum, default_value_t = UpperArg::Tmpfs)]
    pub upper: UpperArg,

    /// With an OCI layout holding several images: the tag to run
    #[arg(long = "image-ref", value_name = "TAG")]
    pub image_ref: Option<String>,

    /// Replaces the image's Entrypoint (and its Cmd); "" runs the command alone
    #[arg(long = "entrypoint", value_name = "PROGRAM")]
    pub entrypoint: Option<String>,

    /// Rootfs driver to use, with no fallback [default: the first usable]
    #[arg(long = "rootfs-driver", value_name = "NAME")]
    pub rootfs_driver: Option<String>,

    /// Print every plug-in of this build and whether this host can use it, then exit
    #[arg(long = "list-drivers")]
    pub list_drivers: bool,

    /// With -list-drivers: print JSON
    #[arg(long = "json")]
    pub json: bool,

    #[command(flatten)]
    pub process: ProcessArgs,

    /// Container hostname [default: psdock]
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostname: Option<String>,

    /// HOST:CONTAINER[:ro|rw] bind mount, rw by default (repeatable)
    #[arg(short = 'v', long = "bind-mount", value_name = "HOST:CONTAINER[:ro|rw]", action = ArgAction::Append)]
    pub bind_mount: Vec<OsString>,

    /// Add a capability to the default set: a name as in capabilities(7), with
    /// or without CAP_, or ALL (repeatable)
    #[arg(long = "cap-add", value_name = "CAP", action = ArgAction::Append)]
    pub cap_add: Vec<String>,

    /// Drop a capability from the default set, or ALL to keep only the
    /// -cap-add ones (repeatable)
    #[arg(long = "cap-drop", value_name = "CAP", action = ArgAction::Append)]
    pub cap_drop: Vec<String>,

    /// SIGKILL the command this many seconds after the first SIGINT or SIGTERM
    /// to psdock, or a hang-up; -1 for never [default: 10]
    #[arg(long = "kill-timeout", value_name = "SECONDS", value_parser = kill_timeout, allow_negative_numbers = true)]
    pub kill_timeout: Option<KillTimeout>,

    /// System-call filter: default (docker's), unconfined, or an OCI seccomp profile FILE
    #[arg(long = "seccomp", value_name = "default|unconfined|FILE")]
    pub seccomp: Option<OsString>,

    #[command(flatten)]
    pub stdio: super::StdioArgs,

    #[command(flatten)]
    pub notify: super::NotifyArgs,

    #[command(flatten)]
    pub net: super::NetArgs,

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

    #[command(flatten)]
    pub health: super::HealthArgs,

    #[command(flatten)]
    pub limits: super::LimitArgs,

    #[command(flatten)]
    pub restart: super::RestartArgs,

    /// Run a minimal init as PID 1 with the command as its child: it reaps
    /// orphans, forwards signals to the command and exits with its code
    #[arg(long = "init")]
    pub init: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    fn kill_timeout_of(words: &[&str]) -> Option<KillTimeout> {
        let argv = ["psdock"].iter().chain(words).chain(&["true"]);
        match parse(argv.copied()).unwrap() {
            Parsed::Run(a) => a.kill_timeout,
            Parsed::Print(p) => panic!("unexpected print: {p}"),
        }
    }

    #[test]
    fn kill_timeout_takes_seconds_or_minus_1_for_never() {
        assert_eq!(kill_timeout_of(&[]), None);
        assert_eq!(
            kill_timeout_of(&["-kill-timeout", "3"]),
            Some(KillTimeout::Seconds(3))
        );
        for words in [
            &["-kill-timeout", "-1"][..],
            &["-kill-timeout=-1"],
            &["--kill-timeout", "-1"],
        ] {
            assert_eq!(
                kill_timeout_of(words),
                Some(KillTimeout::Never),
                "{words:?}"
            );
        }
        for bad in ["0", "-0", "-2", "soon", ""] {
            assert_eq!(
                kill_timeout(bad),
                Err("must be at least 1 or -1 for never"),
                "{bad:?}"
            );
        }
    }
}
