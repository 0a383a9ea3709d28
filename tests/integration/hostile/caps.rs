//! Hole 5: the host's network is shared, so a container that can open a raw or
//! a packet socket sees and forges every packet of the host. The default set
//! has no NET_RAW; asked for with `-cap-add`, the same attempts get through,
//! which shows that they really reach the kernel.

use crate::util::*;

/// arping opens an AF_PACKET socket before anything else (what a sniffer
/// uses); traceroute a raw ICMP socket, with no unprivileged fallback (ping
/// has one where `net.ipv4.ping_group_range` allows it).
const ATTEMPT: &str = "grep CapEff /proc/self/status; \
    arping -c 1 -w 1 -I lo 127.0.0.1 2>&1; \
    traceroute -m 1 -q 1 -w 1 127.0.0.1 2>&1 >/dev/null && echo traceroute worked";

#[test]
fn no_raw_or_packet_socket_on_the_host_s_network_by_default() {
    let sb = Sandbox::new();
    let out = sb.run(sh(ATTEMPT));
    assert_eq!(
        stdout(&out),
        "CapEff:\t00000000800405fb\n\
         arping: socket: Operation not permitted\n\
         traceroute: socket: Operation not permitted\n",
        "{out:?}"
    );
    // The same attempts with NET_RAW: the packet socket opens (arping goes on
    // to find that `lo` has no ARP), and so does the raw ICMP socket.
    let out = sb.run(["-cap-add", "NET_RAW"].into_iter().chain(sh(ATTEMPT)));
    assert_eq!(
        stdout(&out),
        "CapEff:\t00000000800425fb\n\
         arping: interface lo is not ARPable\n\
         traceroute worked\n",
        "{out:?}"
    );
    sb.assert_clean();
}
