//! `syslog`: `syslog://` (the local `/dev/log`), `syslog+udp://HOST:PORT` and
//! `syslog+tcp://HOST:PORT`, each with `?tag=NAME&facility=NAME`. Picked by
//! those schemes.
//!
//! One message per line of the command's output, with the priority of its
//! stream (info for stdout, err for stderr); stdin is /dev/null. The formats
//! and the re-dialing are in `crate::stdio::syslog`. No `/dev/log`, or a TCP
//! receiver that refuses, is psdock's error before the container exists.

use std::os::fd::AsRawFd;

use tokio::net::{UdpSocket, UnixDatagram};

use crate::error::plain;
use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::remote;
use crate::stdio::syslog::{self, Conn, Form};

/// Where the libc `syslog` writes.
const DEV_LOG: &str = "/dev/log";

struct Syslog(Form);

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "syslog",
        feature: "stdio-syslog",
        priority: 0,
        summary: "a syslog message on /dev/log for each line of stdout and stderr",
        probe: always_usable,
        build: Some(|_| Box::new(Syslog(Form::Local))),
    }
}

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "syslog+udp",
        feature: "stdio-syslog",
        priority: 0,
        summary: "an RFC 5424 syslog datagram for each line of stdout and stderr",
        probe: always_usable,
        build: Some(|_| Box::new(Syslog(Form::Datagram))),
    }
}

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "syslog+tcp",
        feature: "stdio-syslog",
        priority: 0,
        summary: "RFC 5424 syslog over TCP, a message for each line of stdout and stderr",
        probe: always_usable,
        build: Some(|_| Box::new(Syslog(Form::Stream))),
    }
}

impl StdioSink for Syslog {
    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        let dial: syslog::Dial = match self.0 {
            Form::Local => local,
            Form::Datagram => udp,
            Form::Stream => tcp,
        };
        Box::pin(syslog::open(spec, dial, self.0))
    }
}

fn local(spec: &StdioSpec) -> LocalFuture<'_, Result<Conn, PluginError>> {
    Box::pin(async move {
        let sock = UnixDatagram::unbound()?;
        sock.connect(DEV_LOG).map_err(|e| {
            format!(
                "-stdio {}: nothing listening on {DEV_LOG}: {}",
                spec.url,
                plain(&e)
            )
        })?;
        Ok(Conn::Unix(sock))
    })
}

fn udp(spec: &StdioSpec) -> LocalFuture<'_, Result<Conn, PluginError>> {
    Box::pin(async move {
        let fail = |why: String| format!("-stdio {}: {why}", spec.url);
        let (host, port) = remote::host_port(&spec.target).map_err(fail)?;
        // Resolved on this thread, as `remote` explains.
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| fail(format!("no address for {host}")))?;
        let any: std::net::SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = UdpSocket::bind(any).await?;
        sock.connect(addr)
            .await
            .map_err(|e| fail(format!("cannot reach {addr}: {}", plain(&e))))?;
        Ok(Conn::Udp(sock))
    })
}

fn tcp(spec: &StdioSpec) -> LocalFuture<'_, Result<Conn, PluginError>> {
    Box::pin(async move {
        let (_, stream) = remote::connect(spec).await?;
        let fd = stream.as_raw_fd();
        Ok(Conn::Stream(Box::pin(stream), fd))
    })
}
