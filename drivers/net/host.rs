//! `host`: the container shares psdock's network, as in the original: its
//! ports are the host's, and so is everything it can reach. Picked by
//! `-net host`, and when no `-net` is given.

use crate::plugin::{always_usable, BareNetwork, Descriptor, Network, NetworkDriver, PluginError};
use crate::spec::NetSpec;

struct Host;

inventory::submit! {
    Descriptor::<dyn NetworkDriver> {
        name: "host",
        feature: "",
        // First in the listing: the default.
        priority: 100,
        summary: "psdock's own network, shared (the default)",
        probe: always_usable,
        build: Some(|_| Box::new(Host)),
    }
}

impl NetworkDriver for Host {
    fn setup(
        &self,
        _: &NetSpec,
        _: &str,
        _: &std::path::Path,
    ) -> Result<Box<dyn Network>, PluginError> {
        Ok(Box::new(BareNetwork {
            mode: "host",
            namespace: None,
        }))
    }
}
