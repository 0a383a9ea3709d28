//! The `/etc/resolv.conf` of a container with a network namespace of its own
//! (`none`, `bridge`). A name server on the host's loopback (127.0.0.53 of
//! systemd-resolved, 127.0.0.1 of dnsmasq, ::1) is the container's own
//! loopback there, where nothing answers; so, as docker does for its default
//! bridge, the container gets the host's file with those lines taken out
//! (search and options kept). Behind systemd-resolved's stub the upstream
//! servers it lists in its own file are used instead, and when no server is
//! left, docker's IPv4 fallback (Google's public servers): the containers
//! have no IPv6 address, so docker's IPv6 fallbacks would be of no use.
//!
//! The file is written into the rootfs's hidden sibling: root's alone,
//! never in the image, and removed with the sibling by the run's teardown
//! and by a reclaim after a killed psdock. The container binds it read-only.

use std::ffi::CString;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// docker's fallback when no usable server is left.
pub const FALLBACK: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The file systemd-resolved writes with its upstream servers.
const SYSTEMD_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

#[derive(Debug, thiserror::Error)]
#[error("cannot write the container's resolv.conf at {}: {source}", .path.display())]
pub struct ResolvError {
    path: PathBuf,
    source: std::io::Error,
}

/// The server a `nameserver` line names, if it is one (a zone, `%eth0`, cut).
fn nameserver(line: &str) -> Option<IpAddr> {
    let mut words = line.split_ascii_whitespace();
    if words.next()? != "nameserver" {
        return None;
    }
    let addr = words.next()?;
    addr.split('%').next()?.parse().ok()
}

/// Whether `conf` points at systemd-resolved's stub.
fn names_the_stub(conf: &str) -> bool {
    conf.lines()
        .any(|l| nameserver(l) == Some(IpAddr::from([127, 0, 0, 53])))
}

/// `host` without its loopback servers; the fallback servers at the end
/// when none is left.
pub fn filter(host: &str) -> String {
    let mut out = String::with_capacity(host.len() + 32);
    let mut servers = 0;
    for line in host.lines() {
        match nameserver(line) {
            Some(ip) if ip.is_loopback() => continue,
            Some(_) => servers += 1,
            None => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for ip in FALLBACK {
            out.push_str("nameserver ");
            out.push_str(ip);
            out.push('\n');
        }
    }
    out
}

/// The container's resolv.conf made from the host's `host` file, reading
/// systemd-resolved's upstream list with `upstream` when `host` names its stub.
pub fn contents(host: &str, upstream: impl FnOnce() -> Option<String>) -> String {
    match names_the_stub(host).then(upstream).flatten() {
        Some(up) => filter(&up),
        None => filter(host),
    }
}

/// Writes the container's resolv.conf into `sibling` and returns its path,
/// for the container to bind.
pub fn write(sibling: &Path) -> Result<CString, ResolvError> {
    let path = sibling.join("resolv.conf");
    let err = |source| ResolvError {
        path: path.clone(),
        source,
    };
    // Unreadable or absent (then the plan binds nothing): the fallback.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let text = contents(&host, || std::fs::read_to_string(SYSTEMD_UPSTREAM).ok());
    // Each attempt of a restarted service writes it afresh (the host's may
    // have changed); the sibling is root's alone, so nothing else put it there.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(err)?;
    Ok(CString::new(path.as_os_str().as_bytes()).expect("validated: no NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_go_and_the_rest_stays() {
        let host = "# made by hand\nsearch example.org\nnameserver 127.0.0.53\nnameserver 10.1.2.3\n\
                    nameserver ::1\nnameserver fe80::1%eth0\noptions edns0 trust-ad\nnameserver 127.0.1.1\n";
        assert_eq!(
            filter(host),
            "# made by hand\nsearch example.org\nnameserver 10.1.2.3\n\
             nameserver fe80::1%eth0\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn nothing_left_is_the_fallback() {
        assert_eq!(
            filter("search lan\nnameserver 127.0.0.1\n"),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(filter(""), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn the_stub_is_replaced_by_systemd_resolveds_upstream_servers() {
        let stub = "nameserver 127.0.0.53\noptions edns0\nsearch lan\n";
        let upstream = || Some("nameserver 192.0.2.1\nsearch lan\n".to_owned());
        assert_eq!(
            contents(stub, upstream),
            "nameserver 192.0.2.1\nsearch lan\n"
        );
        assert_eq!(
            contents(stub, || None),
            "options edns0\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let dnsmasq = "nameserver 127.0.0.1\n";
        let never = || -> Option<String> { panic!("read without the stub") };
        assert_eq!(
            contents(dnsmasq, never),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
