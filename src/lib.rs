//! psdock: run one command in a throwaway Linux container and supervise it.
//!
//! The core lives in `src/`; plug-in implementations live in `drivers/` and
//! `sinks/` and register themselves with [`plugin`]'s registry.

pub mod cgroup;
pub mod cli;
pub mod container;
pub mod error;
pub mod exec;
pub mod footprint;
pub mod fsutil;
pub mod health;
pub mod host;
pub mod image;
pub mod lifecycle;
pub mod ls;
#[cfg(any(feature = "net-none", feature = "net-bridge"))]
pub mod net;
pub mod plugin;
pub mod proc;
pub mod proctree;
pub mod rootfs;
pub mod run;
pub mod sd_notify;
pub mod seal;
pub mod service;
pub mod signals;
pub mod spec;
pub mod state;
pub mod stdio;
pub mod supervisor;
#[cfg(any(
    feature = "stdio-tls",
    feature = "stdio-syslog-tls",
    feature = "notify-webhook"
))]
pub mod tls_trust;
pub mod usage;
pub mod user;

#[path = "../drivers/mod.rs"]
pub mod drivers;
#[path = "../sinks/mod.rs"]
pub mod sinks;
