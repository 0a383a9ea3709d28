//! Outbound NAT for a bridge's subnet, and forwarding through the host.
//!
//! The rules are made with `iptables` (Debian's is iptables-nft, which
//! programs nftables): the kernel takes nftables rules only as netlink
//! batches, and no Rust crate with a licence psdock can use builds them
//! (rustables is GPL-3.0; nftnl binds the C libnftnl). The rules belong to
//! the bridge, like its address, and stay when the last container leaves;
//! each is added only when `iptables -C` does not find it, under a lock, so
//! concurrent psdocks add it once.

use std::io;
use std::process::Command;

use crate::spec::Subnet;

const IPTABLES: &str = "iptables";

/// What the host lacks for outbound NAT.
pub fn missing() -> Option<String> {
    match Command::new(IPTABLES).arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`{IPTABLES} --version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!(
            "outbound NAT needs {IPTABLES} ({e}; Debian: apt install iptables)"
        )),
    }
}

/// Makes sure that the host forwards IPv4 and masquerades what leaves
/// `subnet` through any interface but `bridge`.
pub fn ensure(bridge: &str, subnet: &Subnet) -> io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| io::Error::new(e.kind(), format!("cannot enable IPv4 forwarding: {e}")))?;
    let net = subnet.to_string();
    let rules: [&[&str]; 3] = [
        &[
            "-t",
            "nat",
            "POSTROUTING",
            "-s",
            &net,
            "!",
            "-o",
            bridge,
            "-j",
            "MASQUERADE",
        ],
        &["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
        &["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"],
    ];
    for rule in rules {
        // `-t TABLE` then the chain, then the rule: `-C` and `-A` take the
        // chain right after themselves.
        let (table, rest) = rule.split_at(2);
        let (chain, spec) = rest.split_first().expect("a chain");
        let has = iptables(&[table, &["-C", chain], spec].concat())?;
        if !has {
            let verb = if *chain == "FORWARD" { "-I" } else { "-A" };
            if !iptables(&[table, &[verb, chain], spec].concat())? {
                return Err(io::Error::other(format!(
                    "iptables refused: {}",
                    rule.join(" ")
                )));
            }
        }
    }
    Ok(())
}

fn iptables(args: &[&str]) -> io::Result<bool> {
    let out = Command::new(IPTABLES)
        .arg("-w")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok(out.status.success())
}
