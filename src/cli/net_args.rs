/// The network flags, flattened into [`super::Args`].
#[derive(Debug, Default, clap::Args)]
pub struct NetArgs {
    /// The container's network: host (psdock's own), none (a namespace with
    /// only lo) or bridge (eth0 on a host bridge, outbound NAT) [default: host]
    #[arg(long = "net", value_name = "host|none|bridge")]
    pub net: Option<String>,

    /// -net bridge: the host bridge, made on first use [default: psdock0]
    #[arg(long = "net-bridge", value_name = "NAME")]
    pub net_bridge: Option<String>,

    /// -net bridge: the IPv4 subnet addresses come from; the bridge takes the
    /// first [default: 10.88.0.0/16]
    #[arg(long = "net-subnet", value_name = "CIDR")]
    pub net_subnet: Option<String>,

    /// -net bridge: forward a host port to the container's PORT (repeatable);
    /// without HOST_PORT, a free one (psdock-ls shows it)
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST_PORT:]PORT[/tcp|/udp]",
        action = clap::ArgAction::Append
    )]
    pub publish: Vec<String>,
}
