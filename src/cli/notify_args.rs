/// The flags of the lifecycle notifications, flattened into [`super::Args`]:
/// kept apart so that they live in one place. `-tls-ca`, which https hooks
/// also honour, is with the stdio flags.
#[derive(Debug, Default, clap::Args)]
pub struct NotifyArgs {
    /// PUT a JSON notice to this http(s) URL when the command is starting,
    /// running and no longer running (`crashed`)
    #[arg(long = "web-hook", value_name = "URL")]
    pub web_hook: Option<String>,

    /// Seconds one web hook request may take; also how long psdock waits at
    /// exit for notifications still outstanding [default: 10]
    #[arg(long = "web-hook-timeout", value_name = "SECONDS", value_parser = super::values::seconds)]
    pub web_hook_timeout: Option<u64>,

    /// Sign each web hook body: header X-Psdock-Signature: sha256=HMAC-SHA256(SECRET, body) in hex
    #[arg(
        long = "web-hook-secret",
        value_name = "SECRET",
        allow_hyphen_values = true
    )]
    pub web_hook_secret: Option<String>,

    /// With -web-hook: the command is running once it or a descendant listens
    /// on this TCP port
    #[arg(long = "bind-port", value_name = "PORT", value_parser = super::values::port)]
    pub bind_port: Option<u16>,

    /// How -bind-port is watched: netlink, procfs or lsof [default: the first usable]
    #[arg(long = "port-probe", value_name = "NAME")]
    pub port_probe: Option<String>,
}
