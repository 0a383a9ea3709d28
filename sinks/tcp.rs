//! `tcp`: `tcp://host:port`. Picked by the `tcp` scheme.
//!
//! psdock dials the peer before the container exists (a refused or
//! unreachable peer is psdock's error); the container gets a terminal with
//! echo off whose input is what the peer sends. When the peer closes, the
//! command is terminated as if psdock got SIGTERM.

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::remote;

struct Tcp;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "tcp",
        feature: "stdio-tcp",
        priority: 0,
        summary: "an interactive terminal over a TCP connection psdock dials",
        probe: always_usable,
        build: Some(|_| Box::new(Tcp)),
    }
}

impl StdioSink for Tcp {
    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let (_, stream) = remote::connect(spec).await?;
            Ok(remote::stdio(stream, spec))
        })
    }
}
