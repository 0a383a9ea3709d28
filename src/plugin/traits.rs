use std::ffi::CString;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

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

/// A future a plug-in returns; the supervisor runs one current-thread runtime,
/// so it need not be `Send`.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Answers whether the container's init or one of its descendants listens on a
/// TCP port. The core asks every [`PortProbe::interval`] until the answer is
/// yes or the command has ended; `crate::proctree` is the one walk of the
/// process tree that every probe uses.
pub trait PortProbe {
    /// How long the core waits between two looks: a probe whose look costs more
    /// asks less often.
    fn interval(&self) -> Duration;

    /// One look. `&mut self`: a probe may keep what it opened on the first look
    /// (a netlink socket in the container's network namespace).
    fn listening(&mut self, init: Pid, port: u16) -> LocalFuture<'_, Result<bool, PluginError>>;
}

/// What `-web-hook` and the flags that go with it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySpec {
    pub url: String,
    pub secret: Option<String>,
    /// CA certificates (PEM) trusted instead of the system's.
    pub tls_ca: Option<PathBuf>,
}

/// How the container ended, as a notification reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// The signal that ended it.
    Signal(i32),
}

/// A lifecycle state: each is notified exactly once, in this order, except that
/// a command that ends before it is running goes from `Starting` to `Crashed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    /// The seed's word for "no longer running", clean or not.
    Crashed(Exit),
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Crashed(_) => "crashed",
        }
    }
}

/// One lifecycle event, as the core hands it to a notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The container id (`psdock_` and seven hex digits).
    pub id: Rc<str>,
    /// 1, 2, 3 in the order of the events.
    pub seq: u32,
    pub time: SystemTime,
    pub state: State,
}

/// The outcome of one attempt to deliver an event.
#[derive(Debug)]
pub enum Attempt {
    Delivered,
    /// Worth trying again (a network error, a server error).
    Failed(PluginError),
    /// Trying again would get the same answer (the request was refused).
    Refused(PluginError),
}

/// Picks the destination apart and prepares the client; runs before anything
/// is created, so that a bad destination is psdock's error and leaves nothing
/// behind.
pub trait Notifier {
    fn open(&self, spec: &NotifySpec) -> Result<Box<dyn Delivery>, PluginError>;
}

/// An opened destination. The core owns the order, the per-attempt timeout,
/// the retries and the time allowed at exit; a delivery makes one attempt and
/// says whether another could succeed.
pub trait Delivery {
    fn attempt<'a>(&'a self, event: &'a Event) -> LocalFuture<'a, Attempt>;
}
