//! `-publish`: host ports forwarded to the container by psdock itself, on
//! its runtime (docker-proxy's approach). No firewall rule is made, so
//! nothing is left behind by a killed psdock, the port is reachable from the
//! host's own loopback as from outside, and a port already taken on the host
//! is psdock's error before the container starts.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};

use crate::spec::{Proto, Publish};

/// A UDP client that sends nothing and hears nothing for this long is
/// forgotten.
const UDP_IDLE: Duration = Duration::from_secs(60);
/// At most this many UDP clients at once per port: psdock's memory stays
/// bounded whoever sends to it.
const UDP_CLIENTS: usize = 64;
/// At most this many TCP connections at once per port.
const TCP_CONNECTIONS: usize = 1024;
/// Each direction of a TCP connection is copied through a buffer this big:
/// tokio's default (8 KiB) costs a wake-up and two system calls per 8 KiB,
/// which held a published port to a fifth of the bridge's throughput
/// (bench/publish.sh).
const TCP_BUFFER: usize = 64 * 1024;

/// The forwarders of a run; dropping them stops every one and closes every
/// connection they carry.
pub struct Forwarders {
    tasks: Vec<AbortHandle>,
    /// What was asked, with the host port actually bound.
    pub bound: Vec<Publish>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds every published port and starts forwarding it to `target`. Must be
/// called inside the supervisor's runtime.
pub fn start(publish: &[Publish], target: Ipv4Addr) -> io::Result<Forwarders> {
    let mut forwarders = Forwarders {
        tasks: Vec::new(),
        bound: Vec::new(),
    };
    for p in publish {
        let at = SocketAddr::new(p.host_ip, p.host_port);
        let to = SocketAddr::new(IpAddr::V4(target), p.container_port);
        let fail = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("-publish: cannot bind {}/{}: {e}", at, p.proto.as_str()),
            )
        };
        let (port, task) = match p.proto {
            Proto::Tcp => {
                let l = std::net::TcpListener::bind(at).map_err(fail)?;
                l.set_nonblocking(true)?;
                let l = TcpListener::from_std(l)?;
                (l.local_addr()?.port(), tokio::spawn(tcp(l, to)))
            }
            Proto::Udp => {
                let s = std::net::UdpSocket::bind(at).map_err(fail)?;
                s.set_nonblocking(true)?;
                let s = UdpSocket::from_std(s)?;
                (s.local_addr()?.port(), tokio::spawn(udp(s, to)))
            }
        };
        forwarders.tasks.push(task.abort_handle());
        forwarders.bound.push(Publish {
            host_port: port,
            ..*p
        });
    }
    Ok(forwarders)
}

async fn tcp(listener: TcpListener, to: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = connections.join_next() => continue,
        };
        let Ok((mut client, _)) = accepted else {
            continue;
        };
        if connections.len() >= TCP_CONNECTIONS {
            continue;
        }
        connections.spawn(async move {
            if let Ok(mut upstream) = TcpStream::connect(to).await {
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut upstream,
                    TCP_BUFFER,
                    TCP_BUFFER,
                )
                .await;
            }
        });
    }
}

async fn udp(host: UdpSocket, to: SocketAddr) {
    let host = Arc::new(host);
    let mut clients: HashMap<SocketAddr, (Arc<UdpSocket>, AbortHandle)> = HashMap::new();
    let mut replies = JoinSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, from) = tokio::select! {
            r = host.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
            Some(_) = replies.join_next() => {
                clients.retain(|_, (_, task)| !task.is_finished());
                continue;
            }
        };
        let session = match clients.get(&from) {
            Some((s, task)) if !task.is_finished() => Arc::clone(s),
            _ => {
                clients.retain(|_, (_, task)| !task.is_finished());
                if clients.len() >= UDP_CLIENTS {
                    continue;
                }
                let Ok(s) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
                    continue;
                };
                if s.connect(to).await.is_err() {
                    continue;
                }
                let s = Arc::new(s);
                let task = replies.spawn(reply(Arc::clone(&s), Arc::clone(&host), from));
                clients.insert(from, (Arc::clone(&s), task));
                s
            }
        };
        let _ = session.send(&buf[..n]).await;
    }
}

/// Carries what the container answers `client` back to it, until the
/// exchange has been idle for [`UDP_IDLE`].
async fn reply(session: Arc<UdpSocket>, host: Arc<UdpSocket>, client: SocketAddr) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, session.recv(&mut buf)).await {
        let _ = host.send_to(&buf[..n], client).await;
    }
}
