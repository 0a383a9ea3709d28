use std::path::PathBuf;

use clap::ArgAction;

/// The flags of the stdio sinks, flattened into [`super::Args`]: kept apart so
/// that the stdio flags live in one place.
#[derive(Debug, Default, clap::Args)]
pub struct StdioArgs {
    /// Where stdin, stdout and stderr go: file:///PATH, tcp://HOST:PORT,
    /// tls://HOST:PORT, journald://, syslog://, syslog+udp://HOST:PORT,
    /// syslog+tcp://HOST:PORT or syslog+tls://HOST:PORT [default: psdock's
    /// own, with a tty on a terminal]
    #[arg(long = "stdio", value_name = "URL")]
    pub stdio: Option<String>,

    /// Put PREFIX at the start of every output line, in COLOR if given (white,
    /// green, blue, magenta, yellow, cyan, red; NO_COLOR turns colour off)
    #[arg(
        long = "stdout-prefix",
        value_name = "PREFIX[:COLOR]",
        allow_hyphen_values = true
    )]
    pub stdout_prefix: Option<String>,

    /// Rotate the file:// log every INTERVAL: a bare number is hours, or 30m, 10s, 1d
    #[arg(long = "log-rotate", value_name = "INTERVAL")]
    pub log_rotate: Option<String>,

    /// Number of rotated archives to keep [default: 5]
    #[arg(long = "log-keep", value_name = "N", value_parser = super::values::count)]
    pub log_keep: Option<u32>,

    /// Also trust the CA certificates in this PEM file for tls:// and https:// web hooks
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for tls:// mutual TLS; needs -tls-key
    #[arg(long = "tls-cert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of -tls-cert
    #[arg(long = "tls-key", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Do not verify the tls:// peer's certificate (insecure; psdock warns)
    #[arg(long = "tls-insecure", action = ArgAction::SetTrue)]
    pub tls_insecure: bool,
}
