//! Stdio sinks: where the container's stdin, stdout and stderr go, chosen by the
//! scheme of `-stdio` (none: `inherit`). Each is one file behind one Cargo
//! feature; what they share (prefix, pty, pump, rotation) is in `crate::stdio`.

mod disabled;
#[cfg(feature = "stdio-file")]
mod file;
mod inherit;
#[cfg(feature = "stdio-journald")]
mod journald;
#[cfg(feature = "stdio-syslog")]
mod syslog;
#[cfg(feature = "stdio-syslog-tls")]
mod syslog_tls;
#[cfg(feature = "stdio-tcp")]
mod tcp;
#[cfg(feature = "stdio-tls")]
mod tls;
