//! `bridge`: a network namespace with `eth0`, one end of a veth pair whose
//! other end is on a host bridge (`-net-bridge`, `psdock0` by default, made
//! with the subnet's first address on first use), an address leased from
//! `-net-subnet` (10.88.0.0/16 by default), a default route through the
//! bridge and outbound NAT. `-publish` forwards host ports to it. Picked by
//! `-net bridge`.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use crate::net::forward::{self, Forwarders};
use crate::net::lease::{self, Lease};
use crate::net::rtnl::Rtnl;
use crate::net::{nat, netns};
use crate::plugin::{Descriptor, NetInfo, Network, NetworkDriver, PluginError, PortInfo, Probe};
use crate::spec::{NetSpec, Subnet};

struct Bridge;

inventory::submit! {
    Descriptor::<dyn NetworkDriver> {
        name: "bridge",
        feature: "net-bridge",
        priority: 0,
        summary: "eth0 on a host bridge, an address of its own, outbound NAT, -publish",
        probe,
        build: Some(|_| Box::new(Bridge)),
    }
}

fn probe(_: &crate::host::Host) -> Probe {
    match nat::missing() {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

struct Bridged {
    ns: OwnedFd,
    veth: String,
    bridge: String,
    lease: Lease,
    forwarders: Forwarders,
}

impl Network for Bridged {
    fn namespace(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.ns.as_fd())
    }

    fn info(&self) -> NetInfo {
        NetInfo {
            mode: "bridge".into(),
            address: Some(self.lease.ip),
            bridge: Some(self.bridge.clone()),
            ports: self
                .forwarders
                .bound
                .iter()
                .map(|p| PortInfo {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_port: p.container_port,
                    proto: p.proto,
                })
                .collect(),
        }
    }
}

impl Drop for Bridged {
    /// The pair would go with the namespace, but the kernel tears a namespace
    /// down later, on a work queue: delete the host's end now, so that psdock
    /// leaves no interface behind when it exits.
    fn drop(&mut self) {
        if let Ok(mut rtnl) = Rtnl::open() {
            if let Ok(Some(index)) = rtnl.link_index(&self.veth) {
                let _ = rtnl.delete_link(index);
            }
        }
    }
}

/// Where a step failed, for the one line psdock prints.
fn step(what: String) -> impl FnOnce(std::io::Error) -> PluginError {
    move |e| format!("-net bridge: {what}: {}", explain(&e)).into()
}

/// The kernel's answer when a link kind is not built in.
fn explain(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            format!("{e} (the kernel lacks bridge or veth support: CONFIG_BRIDGE, CONFIG_VETH)")
        }
        _ => e.to_string(),
    }
}

impl NetworkDriver for Bridge {
    fn setup(
        &self,
        spec: &NetSpec,
        id: &str,
        state_dir: &Path,
    ) -> Result<Box<dyn Network>, PluginError> {
        let gateway = spec.subnet.host(1).expect("a subnet of /30 or wider");
        let bridge = ensure_bridge(&spec.bridge, &spec.subnet, gateway, state_dir)?;
        let lease = lease::take(state_dir, &spec.bridge, &spec.subnet, id)
            .map_err(step(format!("cannot lease an address in {}", spec.subnet)))?;
        let ns = netns::create().map_err(step("cannot make a network namespace".into()))?;
        // `psdock_` and seven hex digits: `psd` and the digits fit IFNAMSIZ.
        let veth = format!("psd{}", id.trim_start_matches("psdock_"));
        let mut host = Rtnl::open().map_err(step("cannot open a netlink socket".into()))?;
        host.add_veth(&veth, "eth0", ns.as_raw_fd())
            .map_err(step(format!("cannot make the veth pair {veth}")))?;
        let mut made = Bridged {
            ns,
            veth,
            bridge: spec.bridge.clone(),
            lease,
            forwarders: forward::start(&[], Ipv4Addr::UNSPECIFIED)?,
        };
        let index = host
            .link_index(&made.veth)
            .and_then(|i| i.ok_or_else(|| std::io::Error::other("gone")))
            .map_err(step(format!("cannot find {}", made.veth)))?;
        host.set_up(index, Some(bridge))
            .map_err(step(format!("cannot put {} on {}", made.veth, spec.bridge)))?;
        let ip = made.lease.ip;
        let prefix = spec.subnet.prefix;
        netns::within(made.ns.as_fd(), || {
            let mut inside = Rtnl::open()?;
            let eth0 = inside
                .link_index("eth0")?
                .ok_or_else(|| std::io::Error::other("no eth0"))?;
            inside.add_address(eth0, ip, prefix)?;
            inside.set_up(eth0, None)?;
            inside.add_default_route(gateway)
        })
        .map_err(step("cannot set up eth0 in the container".into()))?;
        made.forwarders = forward::start(&spec.publish, ip).map_err(|e| e.to_string())?;
        Ok(Box::new(made))
    }
}

/// The bridge's index, once it exists with `gateway` and is up, and the
/// host forwards and masquerades for its subnet. Serialised between psdocks
/// by a lock under the state directory, so that the rules are added once.
fn ensure_bridge(
    name: &str,
    subnet: &Subnet,
    gateway: Ipv4Addr,
    state_dir: &Path,
) -> Result<u32, PluginError> {
    let dir = state_dir.join("net");
    std::fs::create_dir_all(&dir).map_err(step(format!("cannot make {}", dir.display())))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(step("cannot open the network lock".into()))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| step("cannot lock the network lock".into())(e.into()))?;
    let mut rtnl = Rtnl::open().map_err(step("cannot open a netlink socket".into()))?;
    let index = match rtnl
        .link_index(name)
        .map_err(step(format!("cannot look up {name}")))?
    {
        Some(i) => i,
        None => {
            rtnl.add_bridge(name)
                .map_err(step(format!("cannot make the bridge {name}")))?;
            rtnl.link_index(name)
                .map_err(step(format!("cannot look up {name}")))?
                .ok_or_else(|| format!("-net bridge: the bridge {name} vanished"))?
        }
    };
    rtnl.add_address(index, gateway, subnet.prefix)
        .map_err(step(format!("cannot give {name} the address {gateway}")))?;
    rtnl.set_up(index, None)
        .map_err(step(format!("cannot set {name} up")))?;
    nat::ensure(name, index, subnet, &dir.join(format!("{name}.nat")))
        .map_err(step("outbound NAT".into()))?;
    Ok(index)
}
