//! The names of the stdio sinks this build leaves out, with their features.
//! (`inherit` is in every build.)

crate::disabled!(StdioSink, "file", "stdio-file");
crate::disabled!(StdioSink, "tcp", "stdio-tcp");
crate::disabled!(StdioSink, "tls", "stdio-tls");
crate::disabled!(StdioSink, "journald", "stdio-journald");
crate::disabled!(StdioSink, "syslog", "stdio-syslog");
crate::disabled!(StdioSink, "syslog+udp", "stdio-syslog");
crate::disabled!(StdioSink, "syslog+tcp", "stdio-syslog");
crate::disabled!(StdioSink, "syslog+tls", "stdio-syslog-tls");

#[cfg(test)]
mod tests {
    use crate::plugin::{Kind, Registry, StdioSink};

    #[test]
    fn every_sink_is_registered_and_compiled_in_exactly_with_its_feature() {
        let registry = Registry::<dyn StdioSink>::new(Kind::Stdio);
        let mut all: Vec<&str> = registry.entries().iter().map(|d| d.name).collect();
        all.sort();
        assert_eq!(
            all,
            [
                "file",
                "inherit",
                "journald",
                "syslog",
                "syslog+tcp",
                "syslog+tls",
                "syslog+udp",
                "tcp",
                "tls"
            ]
        );
        let expected: Vec<&str> = [
            ("file", cfg!(feature = "stdio-file")),
            ("inherit", true),
            ("journald", cfg!(feature = "stdio-journald")),
            ("syslog", cfg!(feature = "stdio-syslog")),
            ("syslog+tcp", cfg!(feature = "stdio-syslog")),
            ("syslog+tls", cfg!(feature = "stdio-syslog-tls")),
            ("syslog+udp", cfg!(feature = "stdio-syslog")),
            ("tcp", cfg!(feature = "stdio-tcp")),
            ("tls", cfg!(feature = "stdio-tls")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let mut compiled = registry.compiled_in();
        compiled.sort();
        assert_eq!(compiled, expected);
    }
}
