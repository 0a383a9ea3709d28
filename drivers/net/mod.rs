//! Network drivers: the container's network, picked by `-net` (`host` when
//! none is given). `host` is in every build; `none` and `bridge` each sit
//! behind a Cargo feature.

#[cfg(feature = "net-bridge")]
mod bridge;
mod disabled;
mod host;
#[cfg(feature = "net-none")]
mod none;
