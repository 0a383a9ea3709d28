use std::ffi::CString;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;

use nix::unistd::Pid;

/// A plug-in's own error, carried to `main` as psdock's (exit 125).
pub type PluginError = Box<dyn std::error::Error + Send + Sync>;

/// Where a rootfs driver mounts: the directories are made by the core, which also
/// owns locking, unmounting and removal, so a driver is only its mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsLayout {
    /// Read-only layers, the top one first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

/// The arguments of one `mount(2)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountData {
    pub fstype: &'static str,
    pub data: CString,
}

pub trait RootfsDriver {
    /// The mount that makes `layout.target` a writable copy of the layers.
    fn mount_data(&self, layout: &RootfsLayout) -> MountData;
}

/// What `-stdio` asked for, already split into scheme and the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StdioSpec {
    pub scheme: String,
    pub target: String,
}

/// An opened stdio destination. `child` holds the descriptors that become the
/// container's 0, 1 and 2 (`None`: psdock's own is inherited); `pump` is the task
/// that moves bytes while the container runs, if any.
#[derive(Default)]
pub struct Stdio {
    pub child: [Option<OwnedFd>; 3],
    pub pump: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

pub trait StdioSink {
    /// Opens the destination before the container exists, so that a bad one is
    /// psdock's error and leaves nothing behind.
    fn open(&self, spec: &StdioSpec) -> Result<Stdio, PluginError>;
}

/// Answers whether the container's init or one of its descendants listens on a
/// TCP port.
pub trait PortProbe {
    fn listening(&self, init: Pid, port: u16) -> Result<bool, PluginError>;
}

/// Tells the outside world about state changes (`starting`, `running`, `crashed`).
pub trait Notifier {
    fn notify<'a>(
        &'a self,
        status: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), PluginError>> + 'a>>;
}
