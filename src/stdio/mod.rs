//! The pieces every stdio sink shares: the validated `-stdio` request and its
//! flags ([`options`]), the per-line prefix ([`prefix`]), the container's pty
//! ([`pty`]) and the host terminal ([`terminal`]), the byte pump ([`pump`]),
//! dialing a remote peer ([`remote`], over TLS [`tls_dial`]), the rotating log
//! file ([`rotate`], its archives in `archive`) and the line-by-line delivery of
//! the log sinks ([`lines`]).
//! The sinks themselves live in `sinks/`, one file each.

#[cfg(feature = "stdio-file")]
mod archive;
#[cfg(any(
    feature = "stdio-journald",
    feature = "stdio-syslog",
    feature = "stdio-syslog-tls"
))]
pub mod lines;
pub mod options;
pub mod prefix;
pub mod pty;
pub mod pump;
#[cfg(any(
    feature = "stdio-tcp",
    feature = "stdio-tls",
    feature = "stdio-syslog",
    feature = "stdio-syslog-tls"
))]
pub mod remote;
#[cfg(feature = "stdio-file")]
pub mod rotate;
#[cfg(any(feature = "stdio-syslog", feature = "stdio-syslog-tls"))]
pub mod syslog;
pub mod terminal;
#[cfg(any(feature = "stdio-tls", feature = "stdio-syslog-tls"))]
pub mod tls_dial;

pub use options::{Origin, Rotation, StdioError, StdioSpec, TlsFiles};
