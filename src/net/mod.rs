//! What the network drivers share: network namespaces, a route-netlink
//! client, address leases, published-port forwarders, outbound NAT and the
//! container's resolv.conf.
//! Drivers are in `drivers/net/`.

#[cfg(feature = "net-bridge")]
pub mod forward;
#[cfg(feature = "net-bridge")]
pub mod lease;
#[cfg(feature = "net-bridge")]
pub mod nat;
pub mod netns;
pub mod resolv;
pub mod rtnl;
