//! Outbound NAT for a bridge's subnet, and forwarding through the host.
//!
//! The rules are made with `iptables` (Debian's is iptables-nft, which
//! programs nftables): the kernel takes nftables rules only as netlink
//! batches, and no Rust crate with a licence psdock can use builds them
//! (rustables is GPL-3.0; nftnl binds the C libnftnl). The rules belong to
//! the bridge, like its address, and stay when the last container leaves;
//! each is added only when `iptables -C` does not find it, under a lock, so
//! concurrent psdocks add it once.
//!
//! Running `iptables` costs a few milliseconds each time, four times the
//! rest of a bridge container's set-up: the rules are checked once per bridge
//! and boot (a mark in the state directory, on /run, names the bridge's
//! interface index and the subnet), and the probe only looks for the program
//! on PATH.

use std::io;
use std::path::Path;
use std::process::Command;

use crate::spec::Subnet;

const IPTABLES: &str = "iptables";

/// What the host lacks for outbound NAT: an executable `iptables` on PATH
/// (where `Command` would find it; whether it works shows when it is run).
pub fn missing() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    (!crate::host::on_path(IPTABLES, &path))
        .then(|| format!("outbound NAT needs {IPTABLES} on PATH (Debian: apt install iptables)"))
}

/// Makes sure, once per boot, that the host forwards IPv4 and masquerades
/// what leaves `subnet` through any interface but `bridge` (whose interface
/// index is `index`). `mark`: the file that says it was done, in a directory
/// the caller holds the lock of.
pub fn ensure(bridge: &str, index: u32, subnet: &Subnet, mark: &Path) -> io::Result<()> {
    let done = format!("{index} {subnet}\n");
    if std::fs::read_to_string(mark).is_ok_and(|m| m == done) {
        return Ok(());
    }
    add_rules(bridge, subnet)?;
    std::fs::write(mark, done)
}

fn add_rules(bridge: &str, subnet: &Subnet) -> io::Result<()> {
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
