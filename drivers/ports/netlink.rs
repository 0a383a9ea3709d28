//! `netlink`: asks the kernel through a sock_diag netlink socket, opened in the
//! container's network namespace (so the answer stays right once the
//! container has its own), which TCP sockets listen on the port, then looks
//! for their inodes among the descriptors of the container's processes. No
//! file is parsed and no command run. Picked first wherever the kernel has
//! sock_diag.
//!
//! Two kinds of question, because a full listing is not free: the kernel walks
//! every bucket of its listening hash for it (16384 here, twice: IPv4 and
//! IPv6), 25-40 us each from a cold cache, which polled every 10 ms would cost
//! more than 1% of a core with the wake-ups. So every poll asks the kernel which
//! socket would take a connection to 127.0.0.1:PORT and to [::1]:PORT: the
//! kernel's own hash look-up, a few microseconds, and it finds any listener on
//! the wildcard addresses or loopback, which is where servers listen. Every
//! ninth poll (~100 ms), and on the first, the full listing catches a
//! listener on any other address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::host::Host;
use crate::plugin::{Descriptor, LocalFuture, PluginError, PortProbe, Probe};
use crate::proctree;

/// A wake-up alone costs 40-70 us of CPU on this VM (more when the host is
/// busy) and a look-up pair 10-20 us more: every 11 ms keeps the median delay
/// near 6 ms and the waiting cost near 0.8% of a core, both under their targets
/// (10 ms, 1%) with some room on a loaded machine.
const INTERVAL: Duration = Duration::from_millis(11);
/// Polls between two full listings: one every ~100 ms.
const FULL_EVERY: u32 = 9;

#[derive(Default)]
struct Netlink {
    socket: Option<Socket>,
    /// Reused between looks: the answers are read into it.
    buf: Vec<u8>,
    polls: u32,
    ownership: proctree::Ownership,
}

inventory::submit! {
    Descriptor::<dyn PortProbe> {
        name: "netlink",
        feature: "ports-netlink",
        priority: 300,
        summary: "sock_diag LISTEN query in the container's network namespace",
        probe,
        build: Some(|_| Box::new(Netlink::default())),
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
        let socket = match &mut self.socket {
            Some(socket) => socket,
            empty => empty.insert(open_in_netns(init)?),
        };
        let full = self.polls.is_multiple_of(FULL_EVERY);
        self.polls = self.polls.wrapping_add(1);
        let mut inodes = Vec::new();
        let mut found = |inode| inodes.push(inode);
        let answer = if full {
            list(socket, AF_INET, port, &mut self.buf, &mut found)
                .and_then(|()| list(socket, AF_INET6, port, &mut self.buf, &mut found))
        } else {
            let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
            lookup(socket, v4, port, &mut self.buf, &mut found)
                .and_then(|()| lookup(socket, v6, port, &mut self.buf, &mut found))
        };
        if let Err(e) = answer {
            // Half an answer may still be queued on it: start afresh next time.
            self.socket = None;
            return Err(e);
        }
        self.ownership.tree_holds(init, &inodes)
    }
}

/// A sock_diag socket in the network namespace of `init`. A socket stays in the
/// namespace it was made in, so a short-lived thread enters that namespace for
/// the `socket(2)` call and ends there: psdock's own thread never leaves its
/// namespace, so nothing a container does can strand psdock (and its web hook)
/// in the container's network.
fn open_in_netns(init: Pid) -> io::Result<Socket> {
    let theirs = std::fs::File::open(format!("/proc/{init}/ns/net"))?;
    let ours = std::fs::File::open("/proc/thread-self/ns/net")?;
    let (a, b) = (theirs.metadata()?, ours.metadata()?);
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        return Socket::new(NETLINK_SOCK_DIAG);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(theirs.as_fd(), CloneFlags::CLONE_NEWNET)?;
                Socket::new(NETLINK_SOCK_DIAG)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread failed")))
    })
}

/// The inodes of all TCP sockets of `family` listening on `port`, whatever
/// their address. The kernel skips sockets on other ports itself.
fn list(
    socket: &Socket,
    family: u8,
    port: u16,
    buf: &mut Vec<u8>,
    found: &mut impl FnMut(u64),
) -> io::Result<()> {
    let mut socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    socket_id.source_port = port;
    ask(
        socket,
        NLM_F_REQUEST | NLM_F_DUMP,
        family,
        socket_id,
        buf,
        found,
    )
}

/// The inode of the socket that would take a TCP connection to `local`:port:
/// a listener on that address or on the wildcard one, if there is one.
fn lookup(
    socket: &Socket,
    local: IpAddr,
    port: u16,
    buf: &mut Vec<u8>,
    found: &mut impl FnMut(u64),
) -> io::Result<()> {
    let family = if local.is_ipv4() { AF_INET } else { AF_INET6 };
    let socket_id = SocketId {
        source_port: port,
        source_address: local,
        // As if from the same address, from a port nobody connects from: only
        // a listener can match.
        destination_port: 1,
        destination_address: local,
        interface_id: 0,
        // All ones: "any socket", no cookie to check.
        cookie: [0xff; 8],
    };
    match ask(socket, NLM_F_REQUEST, family, socket_id, buf, found) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// Sends one request for TCP sockets in LISTEN state and reads the answer to
/// its end, calling `found` with the inode of each socket.
fn ask(
    socket: &Socket,
    flags: u16,
    family: u8,
    socket_id: SocketId,
    buf: &mut Vec<u8>,
    found: &mut impl FnMut(u64),
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
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
    let dump = flags & NLM_F_DUMP != 0;
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
                    // A look-up may, in theory, land on a connection.
                    if r.header.state == TCP_LISTEN {
                        found(r.header.inode.into());
                    }
                    if !dump {
                        return Ok(());
                    }
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

    /// Every listener the full listing finds on `port`, and what the look-ups
    /// at 127.0.0.1 and ::1 find.
    fn both_ways(port: u16) -> (Vec<u64>, Vec<u64>) {
        let socket = open_in_netns(own_pid()).unwrap();
        let mut buf = Vec::new();
        let (mut listed, mut looked_up) = (Vec::new(), Vec::new());
        for family in [AF_INET, AF_INET6] {
            list(&socket, family, port, &mut buf, &mut |i| listed.push(i)).unwrap();
        }
        for local in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            lookup(&socket, local, port, &mut buf, &mut |i| looked_up.push(i)).unwrap();
        }
        (listed, looked_up)
    }

    fn inode(l: &TcpListener) -> u64 {
        let fd = std::os::fd::AsRawFd::as_raw_fd(l);
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino()
    }

    #[test]
    fn listings_and_look_ups_find_listeners_on_the_port_only() {
        for addr in ["127.0.0.1:0", "0.0.0.0:0", "[::1]:0", "[::]:0"] {
            let l = TcpListener::bind(addr).unwrap();
            let port = l.local_addr().unwrap().port();
            let (listed, looked_up) = both_ways(port);
            assert_eq!(listed, [inode(&l)], "{addr}");
            assert!(looked_up.contains(&inode(&l)), "{addr}: {looked_up:?}");
        }
        // An address the look-ups do not ask about: only the listing sees it.
        let l = TcpListener::bind("127.0.0.2:0").unwrap();
        let (listed, looked_up) = both_ways(l.local_addr().unwrap().port());
        assert_eq!((listed, looked_up), (vec![inode(&l)], vec![]));
        // A connection is not a listener, and nobody listens on a closed port.
        let port = port_nobody_listens_on();
        assert_eq!(both_ways(port), (vec![], vec![]));
    }

    #[test]
    fn a_look_sees_listeners_of_the_tree_and_no_one_elses() {
        let mut probes = std::collections::HashMap::new();
        proctree::check_probe(|init, port| {
            let probe = probes.entry(init).or_insert_with(Netlink::default);
            probe.look(init, port).unwrap()
        });
    }

    #[test]
    fn a_listener_on_another_address_is_seen_by_every_full_listing() {
        let l = TcpListener::bind("127.0.0.2:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut probe = Netlink::default();
        assert!(probe.look(own_pid(), port).unwrap(), "the first look lists");
        let next: Vec<bool> = (0..FULL_EVERY)
            .map(|_| probe.look(own_pid(), port).unwrap())
            .collect();
        let mut expected = vec![false; FULL_EVERY as usize - 1];
        expected.push(true);
        assert_eq!(next, expected);
    }

    /// Killed and reaped however the test ends.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn asks_in_the_network_namespace_of_the_init() {
        // nc listens in a network namespace of its own, on a port that is
        // free there whatever the host uses.
        let port = 5555;
        let child = Reaped(
            std::process::Command::new("unshare")
                .args(["--net", "busybox", "nc", "-l", "-p", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = Pid::from_raw(child.0.id() as i32);
        // The probe keeps the namespace of its first look, as psdock's init
        // never changes its own: wait until unshare has made the new one.
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ns(&pid.to_string()) == ns("self") {
            assert!(
                std::time::Instant::now() < deadline,
                "no namespace of its own"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = ns("thread-self");
        let mut probe = Netlink::default();
        while !probe.look(pid, port).unwrap() {
            assert!(std::time::Instant::now() < deadline, "never seen listening");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            ns("thread-self"),
            before,
            "the caller stays in its namespace"
        );
        // The same question asked in psdock's own namespace finds nothing of it.
        let ours = open_in_netns(own_pid()).unwrap();
        let mut inodes = Vec::new();
        for family in [AF_INET, AF_INET6] {
            list(&ours, family, port, &mut Vec::new(), &mut |i| {
                inodes.push(i)
            })
            .unwrap();
        }
        let theirs = proctree::held_by(&[pid], &inodes);
        assert!(theirs.is_empty(), "{inodes:?}");
    }
}
