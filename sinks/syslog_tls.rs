//! `syslog+tls`: `syslog+tls://HOST:PORT[?tag=NAME&facility=NAME]`, RFC 5424
//! syslog over TLS (RFC 5425). Picked by the `syslog+tls` scheme.
//!
//! The connection is made and verified as for `tls://` (`-tls-ca`,
//! `-tls-cert`/`-tls-key`, `-tls-insecure`; `crate::stdio::tls_dial`), before
//! the container exists; the messages are those of `syslog+tcp://`
//! (`crate::stdio::syslog`).

use std::os::fd::AsRawFd;

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::syslog::{self, Conn, Form};
use crate::stdio::tls_dial;

struct SyslogTls;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "syslog+tls",
        feature: "stdio-syslog-tls",
        priority: 0,
        summary: "RFC 5425 syslog over verified TLS, a message for each line of stdout and stderr",
        probe: always_usable,
        build: Some(|_| Box::new(SyslogTls)),
    }
}

impl StdioSink for SyslogTls {
    fn flags(&self) -> &'static [&'static str] {
        tls_dial::FLAGS
    }

    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(syslog::open(spec, dial, Form::Stream))
    }
}

fn dial(spec: &StdioSpec) -> LocalFuture<'_, Result<Conn, PluginError>> {
    Box::pin(async move {
        let stream = tls_dial::dial(spec, "read and alter the log").await?;
        let fd = stream.get_ref().0.as_raw_fd();
        Ok(Conn::Stream(Box::pin(stream), fd))
    })
}
