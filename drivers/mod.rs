//! Plug-in implementations other than stdio sinks: rootfs drivers and
//! notifiers (and, with their issue, port probes). Each is one file behind one
//! Cargo feature; a compiled-out one still registers its name and feature.

pub mod notify;
pub mod rootfs;
