//! What a bad flag or value is reported as: one line naming both.

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("missing required flag -{0}")]
    Missing(&'static str),
    #[error("no command given (psdock -i IMAGE -r ROOTFS [OPTIONS] COMMAND)")]
    NoCommand,
    #[error("-image {}: {why}", .path.display())]
    Image { path: PathBuf, why: String },
    #[error("-rootfs {}: {why}", .path.display())]
    Rootfs { path: PathBuf, why: String },
    #[error("-env {}: {why}", .value.to_string_lossy())]
    Env { value: OsString, why: &'static str },
    #[error("-env-file {}: {why}", .path.display())]
    EnvFile { path: PathBuf, why: String },
    #[error("-cwd {}: must be an absolute path without `..`", .0.display())]
    Cwd(PathBuf),
    #[error("-image: the image's WorkingDir {} is not an absolute path without `..`", .0.display())]
    ImageWorkingDir(PathBuf),
    #[error("-hostname {0:?}: {1}")]
    Hostname(String, &'static str),
    #[error("-user {0}: {1}")]
    User(String, String),
    /// `flag`: `-user NAME`, else what names the image or the container.
    #[error("{flag}: the {whose}'s {path} is larger than {max_mib} MiB, more than psdock reads")]
    UserFileTooLarge {
        flag: String,
        whose: &'static str,
        path: &'static str,
        max_mib: u64,
    },
    #[error("-image: the image's User {0}: {1} (override with -user)")]
    ImageUser(String, String),
    #[error("-image {}: {source}", .path.display())]
    ImageContent {
        path: PathBuf,
        source: crate::image::ImageError,
    },
    #[error("-json: only with -list-drivers")]
    JsonWithoutList,
    #[error("-bind-mount {}: {why}", .value.to_string_lossy())]
    Bind { value: OsString, why: String },
    #[error("-{flag} {value}: {why}")]
    Capability {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("cannot read psdock's own capabilities: {0}")]
    Capget(nix::errno::Errno),
    #[error("command contains a NUL byte")]
    Nul,
    #[error(transparent)]
    Stdio(#[from] crate::stdio::StdioError),
    #[error("-seccomp {}: {why}", .value.display())]
    Seccomp { value: PathBuf, why: String },
    #[error("-{0} needs -{1}")]
    Needs(&'static str, &'static str),
    #[error(transparent)]
    Net(#[from] super::NetSpecError),
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
    #[error(transparent)]
    Limit(#[from] super::limits::LimitError),
}
