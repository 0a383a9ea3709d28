//! `tls`: `tls://host:port`, the `tcp` sink over TLS (rustls with the ring
//! provider). Picked by the `tls` scheme.
//!
//! The peer's certificate is verified against the system's roots (and
//! `-tls-ca`); `-tls-cert`/`-tls-key` present a client certificate;
//! `-tls-insecure` alone skips verification, with a warning. The handshake
//! (`crate::stdio::tls_dial`) completes before the container exists, so a bad
//! certificate is psdock's error and leaves nothing behind.

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::{remote, tls_dial};

struct Tls;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "tls",
        feature: "stdio-tls",
        priority: 0,
        summary: "an interactive terminal over a verified TLS connection psdock dials",
        probe: always_usable,
        build: Some(|_| Box::new(Tls)),
    }
}

impl StdioSink for Tls {
    fn flags(&self) -> &'static [&'static str] {
        tls_dial::FLAGS
    }

    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let stream = tls_dial::dial(spec, "read and drive the session").await?;
            Ok(remote::stdio(stream, spec))
        })
    }
}
