//! `netlink`: asks the kernel through a sock_diag netlink socket for the TCP
//! sockets in LISTEN state (IPv4 and IPv6), keeps those on the port, and looks
//! for their inodes among the descriptors of the container's processes. The
//! socket is opened in the container's network namespace, so the answer stays
//! right once the container has its own. No file is parsed and no command run:
//! one look costs a fraction of a millisecond, so it is asked often and picked
//! first wherever the kernel has sock_diag.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::host::Host;
use crate::plugin::{Descriptor, LocalFuture, PluginError, PortProbe, Probe};
use crate::proctree;

/// One look costs ~0.1 ms: every 10 ms keeps the median delay near 5 ms and the
/// waiting cost near 1% of a core.
const INTERVAL: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Netlink {
    socket: Option<Socket>,
    /// Reused between looks: the answers are read into it.
    buf: Vec<u8>,
}

inventory::submit! {
    Descriptor::<dyn PortProbe> {
        name: "netlink",
        feature: "ports-netlink",
        priority: 300,
        summary: "sock_diag LISTEN query in the container's network namespace",
        probe,
        build: Some(|| Box::new(Netlink::default())),
    }
}

/// Opening (and closing) a sock_diag socket changes nothing on the host.
fn probe(_: &Host) -> Probe {
    Socket::new(NETLINK_SOCK_DIAG)
        .map(drop)
        .map_err(|e| format!("cannot open a sock_diag netlink socket: {e}"))
}

impl PortProbe for Netlink {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn listening(&mut self, init: Pid, port: u16) -> LocalFuture<'_, Result<bool, PluginError>> {
        Box::pin(std::future::ready(self.look(init, port).map_err(|e| {
            PluginError::from(format!("netlink port probe: {e}"))
        })))
    }
}

impl Netlink {
    fn look(&mut self, init: Pid, port: u16) -> io::Result<bool> {
        if self.socket.is_none() {
            self.socket = Some(open_in_netns(init)?);
        }
        let socket = self.socket.as_ref().expect("opened above");
        let mut inodes = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let answer = query(socket, family, &mut self.buf, |p, inode| {
                if p == port {
                    inodes.push(inode);
                }
            });
            if let Err(e) = answer {
                // Half a dump may still be queued on it: start afresh next time.
                self.socket = None;
                return Err(e);
            }
        }
        proctree::tree_holds_socket(init, &inodes)
    }
}

/// A sock_diag socket in the network namespace of `init`. A socket stays in the
/// namespace it was made in, so psdock's thread enters that namespace only for
/// the `socket(2)` call and goes straight back.
fn open_in_netns(init: Pid) -> io::Result<Socket> {
    let theirs = std::fs::File::open(format!("/proc/{init}/ns/net"))?;
    let ours = std::fs::File::open("/proc/thread-self/ns/net")?;
    let (a, b) = (theirs.metadata()?, ours.metadata()?);
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        return Socket::new(NETLINK_SOCK_DIAG);
    }
    nix::sched::setns(theirs.as_fd(), CloneFlags::CLONE_NEWNET)?;
    let socket = Socket::new(NETLINK_SOCK_DIAG);
    if let Err(e) = nix::sched::setns(ours.as_fd(), CloneFlags::CLONE_NEWNET) {
        // Everything psdock does afterwards (the web hook) would go out from the
        // container's network: better to stop here.
        panic!("cannot return to psdock's own network namespace: {e}");
    }
    socket
}

/// One dump of the TCP sockets of `family` in LISTEN state; calls `found` with
/// the local port and inode of each.
fn query(
    socket: &Socket,
    family: u8,
    buf: &mut Vec<u8>,
    mut found: impl FnMut(u16, u64),
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut out = vec![0; request.buffer_len()];
    request.serialize(&mut out);
    socket.send_to(&out, &SocketAddr::new(0, 0), 0)?;
    loop {
        buf.clear();
        // The kernel fills at most 32 KiB per read of a dump.
        buf.reserve(32 << 10);
        let n = socket.recv(buf, 0)?.min(buf.len());
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(rest)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = (msg.header.length as usize).min(rest.len());
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    found(r.header.socket_id.source_port, r.header.inode.into());
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(e.code.map_or_else(
                        || io::Error::other("sock_diag error"),
                        |c| io::Error::from_raw_os_error(-c.get()),
                    ))
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            rest = &rest[len..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn port_nobody_listens_on() -> u16 {
        // Bound and closed again: free, and nobody listens on it any more.
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn own_pid() -> Pid {
        Pid::from_raw(std::process::id() as i32)
    }

    #[test]
    fn sees_listeners_of_the_tree_on_v4_and_v6_and_no_one_elses() {
        let mut probe = Netlink::default();
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(probe.look(own_pid(), port).unwrap());
        let v6 = TcpListener::bind("[::1]:0").unwrap();
        assert!(probe
            .look(own_pid(), v6.local_addr().unwrap().port())
            .unwrap());
        assert!(!probe.look(own_pid(), port_nobody_listens_on()).unwrap());

        // The listener is this process's, not the child's.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let child_pid = Pid::from_raw(child.id() as i32);
        assert!(!probe.look(child_pid, port).unwrap());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
