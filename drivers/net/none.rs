//! `none`: a network namespace of the container's own with only `lo`, up.
//! Nothing outside the container can be reached, nor reach it: not the
//! host's loopback services, not its abstract unix sockets. Picked by
//! `-net none`.

use crate::net::netns;
use crate::plugin::{BareNetwork, Descriptor, Network, NetworkDriver, PluginError, Probe};
use crate::spec::NetSpec;

struct NoneDriver;

inventory::submit! {
    Descriptor::<dyn NetworkDriver> {
        name: "none",
        feature: "net-none",
        priority: 0,
        summary: "a network namespace with only lo",
        probe,
        build: Some(|_| Box::new(NoneDriver)),
    }
}

/// Every kernel psdock runs on has network namespaces unless built without.
fn probe(_: &crate::host::Host) -> Probe {
    if std::path::Path::new("/proc/self/ns/net").exists() {
        Ok(())
    } else {
        Err("the kernel has no network namespaces (CONFIG_NET_NS)".into())
    }
}

impl NetworkDriver for NoneDriver {
    fn setup(
        &self,
        _: &NetSpec,
        _: &str,
        _: &std::path::Path,
    ) -> Result<Box<dyn Network>, PluginError> {
        let ns = netns::create()
            .map_err(|e| format!("-net none: cannot make a network namespace: {e}"))?;
        Ok(Box::new(BareNetwork {
            mode: "none",
            namespace: Some(ns),
        }))
    }
}
