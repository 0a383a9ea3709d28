//! What `tcp://` and `tls://` share: psdock dials the peer (it is the client,
//! as in the seed), with a bounded connect time, and bridges the connection
//! to the container's terminal, whose echo is off (the peer has its own).
//! The connection outlives a container that ends while it is open: a
//! restart's next one carries on with it, and it is closed (a FIN, a TLS
//! close_notify) only once no container follows.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::prefix::{Prefix, Prefixer};
use super::pty::{Size, Tty};
use super::pump::{bridge, Fd, Kept, Stream};
use crate::plugin::{Held, LocalFuture, PluginError, Pump, PumpEnd, Stdio, StdioSpec, Transfer};

/// Resolving and connecting together take at most this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A remote peer has no terminal size to copy: this is the classic one.
const REMOTE_SIZE: Size = Size { rows: 24, cols: 80 };

/// `host:port` or `[v6]:port`, with an optional trailing `/`.
pub fn host_port(target: &str) -> Result<(String, u16), String> {
    let target = target.strip_suffix('/').unwrap_or(target);
    let bad = || "expected HOST:PORT".to_owned();
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("bad port `{port}`"))?;
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Connects to the first address of `host` that answers, within
/// [`CONNECT_TIMEOUT`] for the connection (the resolver has its own timeouts).
///
/// The name is resolved on this thread, not with `tokio::net::lookup_host`:
/// that would start a blocking-pool thread, and the container must be cloned
/// from a psdock that has only its main thread.
async fn dial(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<std::net::SocketAddr> =
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?.collect();
    let attempt = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {}s", CONNECT_TIMEOUT.as_secs()),
            ))
        })
}

/// Connects to the peer `spec` names; returns its host (for TLS) and the
/// connection, or psdock's error naming `-stdio` and its value.
pub async fn connect(spec: &StdioSpec) -> Result<(String, TcpStream), PluginError> {
    let fail = |why: String| format!("-stdio {}: {why}", spec.url);
    let (host, port) = host_port(&spec.target).map_err(fail)?;
    let stream = dial(&host, port)
        .await
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    // Interactive: a keystroke or a prompt goes out at once.
    stream.set_nodelay(true)?;
    Ok((host, stream))
}

/// The [`Stdio`] of a connected peer.
pub fn stdio<S>(stream: S, spec: &StdioSpec) -> Stdio
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    again(Remote {
        stream,
        prefix: spec.prefix.clone(),
        name: format!("-stdio {}", spec.url),
    })
}

/// The [`Stdio`] of a connected peer: a new one, or one still connected
/// for the next attempt.
fn again<S>(remote: Remote<S>) -> Stdio
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    Stdio {
        child: Default::default(),
        tty: Some(Tty {
            size: Some(REMOTE_SIZE),
            echo: false,
        }),
        pump: Some(Box::new(remote)),
    }
}

struct Remote<S> {
    stream: S,
    prefix: Option<Prefix>,
    /// `-stdio URL`, for a message on a failure.
    name: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> Pump for Remote<S> {
    fn start(self: Box<Self>, pty: Option<OwnedFd>) -> io::Result<Transfer> {
        let master =
            Fd::new(pty.ok_or_else(|| io::Error::other("the container has no terminal"))?)?;
        let (rd, wr) = tokio::io::split(self.stream);
        let prefix = self.prefix;
        let mut prefixer = Prefixer::new(prefix.clone());
        let (raise, raised) = super::pty::raised();
        let name = self.name;
        Ok(Transfer {
            done: Box::pin(async move {
                let (mut rd, mut wr) = (Stream(rd), Kept(Stream(wr)));
                let sides = [name.as_str(); 2];
                match bridge(&master, raise, &mut rd, &mut prefixer, &mut wr, sides).await {
                    PumpEnd::Drained(_) => PumpEnd::Drained(Some(Box::new(Remote {
                        stream: rd.0.unsplit(wr.0 .0),
                        prefix,
                        name,
                    }))),
                    gone => gone,
                }
            }),
            // The peer's size is unknown: psdock's own changes are no news to
            // the container.
            resize: Some(Box::new(|| {})),
            raised: Some(raised),
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> Held for Remote<S> {
    fn reopen(self: Box<Self>) -> io::Result<Stdio> {
        Ok(again(*self))
    }

    fn close(self: Box<Self>) -> LocalFuture<'static, io::Result<()>> {
        let mut stream = self.stream;
        Box::pin(async move { stream.shutdown().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("localhost:9090"), Ok(("localhost".into(), 9090)));
        assert_eq!(host_port("127.0.0.1:1/"), Ok(("127.0.0.1".into(), 1)));
        assert_eq!(host_port("[::1]:22"), Ok(("::1".into(), 22)));
        assert!(host_port("::1:22").is_err());
        assert!(host_port("host").is_err());
        assert_eq!(host_port("host:0"), Err("bad port `0`".into()));
        assert_eq!(host_port("host:http"), Err("bad port `http`".into()));
        assert!(host_port(":80").is_err());
        assert!(host_port("h/x:80").is_err());
    }
}
