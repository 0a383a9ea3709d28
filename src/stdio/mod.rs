//! The pieces every stdio sink shares: the validated `-stdio` request and its
//! flags ([`options`]), the per-line prefix ([`prefix`]), the container's pty
//! ([`pty`]) and the host terminal ([`terminal`]), the byte pump ([`pump`]),
//! dialing a remote peer ([`remote`]) and the rotating log file ([`rotate`],
//! its archives in `archive`).
//! The sinks themselves live in `sinks/`, one file each.

#[cfg(feature = "stdio-file")]
mod archive;
pub mod options;
pub mod prefix;
pub mod pty;
pub mod pump;
#[cfg(any(feature = "stdio-tcp", feature = "stdio-tls"))]
pub mod remote;
#[cfg(feature = "stdio-file")]
pub mod rotate;
pub mod terminal;

pub use options::{Rotation, StdioError, StdioSpec, TlsFiles};
