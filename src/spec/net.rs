//! `-net`, `-net-bridge`, `-net-subnet` and `-publish`: the container's
//! network, as plain data.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::cli::NetArgs;

/// `-net` when none is given: the original's behaviour, psdock's own network.
pub const DEFAULT_MODE: &str = "host";
pub const DEFAULT_BRIDGE: &str = "psdock0";
pub const DEFAULT_SUBNET: Subnet = Subnet {
    net: Ipv4Addr::new(10, 88, 0, 0),
    prefix: 16,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    /// The network driver's name (`host`, `none`, `bridge`).
    pub mode: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub publish: Vec<Publish>,
}

/// An IPv4 subnet: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub net: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// The host part of address number `n` (1: the bridge's own), if the
    /// subnet has it (the broadcast address is not given out).
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        (u64::from(n) < size - 1).then(|| Ipv4Addr::from(u32::from(self.net) + n))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.net)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-publish`: the host's address and port (0: any free one) forwarded to
/// the container's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

#[derive(Debug, thiserror::Error)]
pub enum NetSpecError {
    #[error("-net-bridge {0:?}: {1}")]
    Bridge(String, &'static str),
    #[error("-net-subnet {0}: {1}")]
    Subnet(String, &'static str),
    #[error("-publish {0}: {1}")]
    Publish(String, String),
    #[error("-{0} needs -net bridge")]
    NeedsBridge(&'static str),
}

impl NetSpec {
    pub fn from_args(args: &NetArgs) -> Result<Self, NetSpecError> {
        let mode = args.net.clone().unwrap_or_else(|| DEFAULT_MODE.to_owned());
        if mode != "bridge" {
            for (given, flag) in [
                (args.net_bridge.is_some(), "net-bridge"),
                (args.net_subnet.is_some(), "net-subnet"),
                (!args.publish.is_empty(), "publish"),
            ] {
                if given {
                    return Err(NetSpecError::NeedsBridge(flag));
                }
            }
        }
        let bridge = match &args.net_bridge {
            Some(name) => {
                check_ifname(name).map_err(|why| NetSpecError::Bridge(name.clone(), why))?;
                name.clone()
            }
            None => DEFAULT_BRIDGE.to_owned(),
        };
        let subnet = match &args.net_subnet {
            Some(s) => parse_subnet(s).map_err(|why| NetSpecError::Subnet(s.clone(), why))?,
            None => DEFAULT_SUBNET,
        };
        let mut publish = Vec::new();
        for p in &args.publish {
            let one = parse_publish(p).map_err(|why| NetSpecError::Publish(p.clone(), why))?;
            let clash = publish.iter().any(|q: &Publish| {
                q.proto == one.proto
                    && q.host_port == one.host_port
                    && one.host_port != 0
                    && (q.host_ip == one.host_ip
                        || q.host_ip.is_unspecified()
                        || one.host_ip.is_unspecified())
            });
            if clash {
                return Err(NetSpecError::Publish(
                    p.clone(),
                    "that host port is already published".into(),
                ));
            }
            publish.push(one);
        }
        Ok(NetSpec {
            mode,
            bridge,
            subnet,
            publish,
        })
    }
}

/// What the kernel takes as an interface name, and no more.
fn check_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("an interface name has 1 to 15 bytes");
    }
    if name == "." || name == ".." || name.bytes().any(|b| b == b'/' || b == b':' || b <= b' ') {
        return Err("an interface name has no `/`, `:` or blank, and is not `.` or `..`");
    }
    Ok(())
}

fn parse_subnet(s: &str) -> Result<Subnet, &'static str> {
    const FORM: &str = "expected an IPv4 CIDR such as 10.88.0.0/16";
    let (ip, prefix) = s.split_once('/').ok_or(FORM)?;
    let net: Ipv4Addr = ip.parse().map_err(|_| FORM)?;
    let prefix: u8 = prefix.parse().map_err(|_| FORM)?;
    if !(8..=30).contains(&prefix) {
        return Err("the prefix must be from 8 to 30");
    }
    let mask = u32::MAX << (32 - prefix);
    if u32::from(net) & !mask != 0 {
        return Err("has host bits set (give the network address)");
    }
    Ok(Subnet { net, prefix })
}

fn port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("bad {what} port `{s}` (1 to 65535)"))
}

/// docker's `-p`: `PORT`, `HOST_PORT:PORT`, `IP:HOST_PORT:PORT`, `IP::PORT`,
/// with `[v6]` for an IPv6 address, and `/tcp` or `/udp` at the end.
fn parse_publish(s: &str) -> Result<Publish, String> {
    let (rest, proto) = match s.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some((_, other)) => return Err(format!("unknown protocol `{other}` (tcp or udp)")),
        None => (s, Proto::Tcp),
    };
    let (ip, rest) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (ip, rest) = v6
                .split_once("]:")
                .ok_or("expected [IPV6]:HOST_PORT:PORT")?;
            let ip: IpAddr = ip.parse().map_err(|_| format!("bad address `{ip}`"))?;
            (Some(ip), rest)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [ip, h, c]) => {
            let ip: IpAddr = ip.parse().map_err(|_| format!("bad address `{ip}`"))?;
            (Some(ip), *h, *c)
        }
        (Some(ip), [h, c]) => (Some(ip), *h, *c),
        _ => return Err("expected [IP:][HOST_PORT:]PORT[/tcp|/udp]".into()),
    };
    Ok(Publish {
        host_ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        host_port: if host.is_empty() {
            0
        } else {
            port(host, "host")?
        },
        container_port: port(container, "container")?,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(net: &str, publish: &[&str]) -> NetArgs {
        NetArgs {
            net: Some(net.into()),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            ..NetArgs::default()
        }
    }

    #[test]
    fn publish_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (8080, 80, Proto::Tcp)
        );
        assert!(p.host_ip.is_unspecified());
        let p = parse_publish("127.0.0.1::53/udp").unwrap();
        assert_eq!(p.host_ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (0, 53, Proto::Udp)
        );
        let p = parse_publish("[::1]:8443:443").unwrap();
        assert_eq!(p.host_ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_publish("80").unwrap().host_port, 0);
        for bad in [
            "",
            "0",
            "x:80",
            "1.2.3.4:80",
            "a.b.c.d:1:2",
            "80/sctp",
            "70000",
            "1:2:3:4",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets() {
        assert_eq!(parse_subnet("10.88.0.0/16").unwrap(), DEFAULT_SUBNET);
        assert!(parse_subnet("10.88.0.1/16").is_err());
        assert!(parse_subnet("10.0.0.0/31").is_err());
        assert!(parse_subnet("10.0.0.0").is_err());
        let s = parse_subnet("192.168.5.0/30").unwrap();
        assert_eq!(s.host(1), Some(Ipv4Addr::new(192, 168, 5, 1)));
        assert_eq!(s.host(2), Some(Ipv4Addr::new(192, 168, 5, 2)));
        assert_eq!(s.host(3), None);
        assert!(s.contains(Ipv4Addr::new(192, 168, 5, 3)));
        assert!(!s.contains(Ipv4Addr::new(192, 168, 5, 4)));
    }

    #[test]
    fn bridge_flags_need_bridge_mode() {
        assert!(matches!(
            NetSpec::from_args(&args("none", &["80"])),
            Err(NetSpecError::NeedsBridge("publish"))
        ));
        assert!(NetSpec::from_args(&args("bridge", &["80", "81"])).is_ok());
        assert!(NetSpec::from_args(&args("bridge", &["8080:80", "8080:81"])).is_err());
        assert!(NetSpec::from_args(&args("bridge", &["8080:80", "8080:81/udp"])).is_ok());
        let none = NetSpec::from_args(&NetArgs::default()).unwrap();
        assert_eq!(none.mode, "host");
    }

    #[test]
    fn interface_names() {
        assert!(check_ifname("psdock0").is_ok());
        assert!(check_ifname("a-very-long-name").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("").is_err());
    }
}
