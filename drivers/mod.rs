//! Plug-in implementations other than stdio sinks: rootfs drivers, port probes
//! and notifiers. Each is one file behind one Cargo feature; a compiled-out one
//! still registers its name and feature.

pub mod net;
pub mod notify;
pub mod ports;
pub mod rootfs;
