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

#[cfg(test)]
impl RootfsLayout {
    /// Layers and upper as given, work and target anywhere: what driver tests need.
    pub fn sample(lower: &[&str], upper: &str) -> Self {
        Self {
            lower: lower.iter().map(PathBuf::from).collect(),
            upper: PathBuf::from(upper),
            work: PathBuf::from("/r/.x.psdock"),
            target: PathBuf::from("/r/x"),
        }
    }
}

/// The arguments of one `mount(2)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountData {
    pub fstype: &'static str,
    pub data: CString,
}

/// How a layer marks the names it deletes from the layers below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// A 0/0 character device per deleted name, and `trusted.overlay.opaque=y`
    /// on a directory that hides what the layers below have in it.
    Overlay,
    /// The OCI form as it is (taken from aufs): `.wh.NAME` files and a
    /// `.wh..wh..opq` file in an opaque directory.
    Aufs,
}

pub trait RootfsDriver {
    /// The mount that makes `layout.target` a writable copy of the layers, or
    /// why this driver cannot express it (a path it cannot escape, too many layers).
    fn mount_data(&self, layout: &RootfsLayout) -> Result<MountData, String>;

    /// The form in which image layers must be unpacked for this filesystem.
    fn whiteouts(&self) -> Whiteouts {
        Whiteouts::Overlay
    }

    /// The most read-only layers one mount can stack.
    fn max_layers(&self) -> usize {
        usize::MAX
    }
}

pub use crate::stdio::pty::Tty;
pub use crate::stdio::StdioSpec;

/// A future of the supervisor's current-thread runtime (not `Send`).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// An opened stdio destination, before the container exists.
#[derive(Default)]
pub struct Stdio {
    /// Descriptors that become the container's 0, 1 and 2 (`None`: psdock's
    /// own is inherited). Ignored when `tty` is set: the terminal is all three.
    pub child: [Option<OwnedFd>; 3],
    /// Asks the container for a terminal of its own.
    pub tty: Option<Tty>,
    /// What moves bytes while the container runs, if anything must.
    pub pump: Option<Box<dyn Pump>>,
}

/// Started once the container runs, inside the supervisor's runtime.
pub trait Pump {
    /// `pty`: the master of the container's terminal, when `Stdio::tty` was set.
    fn start(self: Box<Self>, pty: Option<OwnedFd>) -> std::io::Result<Transfer>;
}

/// A running pump, as the supervisor drives it.
pub struct Transfer {
    /// Resolves when the container's output has all been delivered, or when
    /// the peer went away (the supervisor then hangs the command up).
    pub done: LocalFuture<'static, PumpEnd>,
    /// Set whenever the container has a terminal: called on SIGWINCH, which is
    /// then not forwarded (the kernel tells the container when its terminal's
    /// size changes), and on SIGCONT, still forwarded (psdock may be back in
    /// its terminal's foreground).
    pub resize: Option<Box<dyn Fn()>>,
    /// Set whenever the container has a terminal: see [`crate::stdio::pty::Raised`].
    pub raised: Option<crate::stdio::pty::Raised>,
}

pub enum PumpEnd {
    /// The container closed its output and all of it was delivered. With
    /// the destination, when the pump keeps something of it that another
    /// container should carry on with (a log and its rotation); `None`: the
    /// sink is opened afresh for a restart.
    Drained(Option<Box<dyn Held>>),
    /// The peer closed, reset or failed: the command is to be hung up.
    PeerGone(std::io::Error),
}

/// A drained pump's destination, still open (see [`PumpEnd::Drained`]).
pub trait Held {
    /// The destination again, for another container (a restart).
    fn reopen(self: Box<Self>) -> std::io::Result<Stdio>;

    /// No container follows: tell the other side (a FIN, a TLS
    /// close_notify). Nothing to say, by default.
    fn close(self: Box<Self>) -> LocalFuture<'static, std::io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

pub trait StdioSink {
    /// The sink-specific flags it takes (`-log-rotate`, `-tls-ca`, ...): any
    /// other is refused before anything is created.
    fn flags(&self) -> &'static [&'static str] {
        &[]
    }

    /// Opens the destination (the file, the connection, the handshake) before
    /// the container exists, so that a bad one is psdock's error and leaves
    /// nothing behind.
    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>>;
}

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
    /// `-tls-ca`: CA certificates (PEM) trusted besides the system's.
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
    /// The health state changed ([`Event::health`]), other than to the
    /// `healthy` that let `running` go out: any number of times, between
    /// `starting` and `crashed`.
    Health,
    /// The kernel's OOM killer ended a process of the container: the total so far.
    Oom(u64),
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Crashed(_) => "crashed",
            State::Health => "health",
            State::Oom(_) => "oom",
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
    /// With a health check, where it stands (on every event after `starting`).
    pub health: Option<crate::health::Health>,
    /// With a restart policy: the attempts before this one (0 on the first).
    pub restarts: Option<u32>,
    /// With a restart policy, on `crashed`: whether another attempt follows.
    pub will_restart: Option<bool>,
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

/// What the state record and psdock-ls show of a container's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetInfo {
    /// The network driver's name: `host`, `none`, `bridge`.
    pub mode: String,
    /// The container's address on its bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The published ports, with the host ports actually bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortInfo {
    pub host_ip: std::net::IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: crate::spec::Proto,
}

/// A container's network as its driver made it, before the container exists.
/// Dropping it undoes what was made (an address given back, forwarders
/// stopped); the namespace itself ends with the container.
pub trait Network {
    /// The network namespace the container joins; `None`: psdock's own.
    fn namespace(&self) -> Option<std::os::fd::BorrowedFd<'_>>;

    fn info(&self) -> NetInfo;
}

/// A network that is a namespace and nothing more (`none`), or psdock's own
/// (`host`, no namespace).
pub struct BareNetwork {
    pub mode: &'static str,
    pub namespace: Option<OwnedFd>,
}

impl Network for BareNetwork {
    fn namespace(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.namespace.as_ref().map(|ns| ns.as_fd())
    }

    fn info(&self) -> NetInfo {
        NetInfo {
            mode: self.mode.into(),
            ..NetInfo::default()
        }
    }
}

/// Makes the network of one container: `host`, `none`, `bridge`.
pub trait NetworkDriver {
    /// Called inside the supervisor's runtime, once the state entry `id`
    /// exists (under `state_dir`) and before the container does: a failure is
    /// psdock's error and leaves nothing behind.
    fn setup(
        &self,
        spec: &crate::spec::NetSpec,
        id: &str,
        state_dir: &std::path::Path,
    ) -> Result<Box<dyn Network>, PluginError>;
}
