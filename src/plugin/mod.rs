//! The five plug-in kinds and the registry that picks among them.
//!
//! The core names no concrete implementation. Each implementation in `drivers/` or
//! `sinks/` submits a [`Descriptor`] through `inventory`; when its Cargo feature is
//! off it submits a compiled-out descriptor instead, so that asking for it by name
//! says which feature to enable. Registration does no work before `main`: probes
//! are plain functions called when a run needs them.

pub mod listing;
mod registry;
mod traits;

pub use registry::{
    always_usable, not_compiled_in, Descriptor, Kind, PickError, Probe, Registry, Rejection,
};
pub use traits::{
    Attempt, BareNetwork, Delivery, Event, Exit, Held, LocalFuture, MountData, NetInfo, Network,
    NetworkDriver, Notifier, NotifySpec, PluginError, PortInfo, PortProbe, Pump, PumpEnd,
    RootfsDriver, RootfsLayout, State, Stdio, StdioSink, StdioSpec, Transfer, Tty, Whiteouts,
};
