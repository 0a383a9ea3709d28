//! The names of the stdio sinks this build leaves out, with their features.
//! (`inherit` is in every build.)

crate::disabled!(StdioSink, "file", "stdio-file");
crate::disabled!(StdioSink, "tcp", "stdio-tcp");
crate::disabled!(StdioSink, "tls", "stdio-tls");
crate::disabled!(StdioSink, "journald", "stdio-journald");

#[cfg(test)]
mod tests {
    use crate::plugin::{Kind, Registry, StdioSink};

    #[test]
    fn every_sink_is_registered_and_compiled_in_exactly_with_its_feature() {
        let registry = Registry::<dyn StdioSink>::new(Kind::Stdio);
        let mut all: Vec<&str> = registry.entries().iter().map(|d| d.name).collect();
        all.sort();
        assert_eq!(all, ["file", "inherit", "journald", "tcp", "tls"]);
        let expected: Vec<&str> = [
            ("file", cfg!(feature = "stdio-file")),
            ("inherit", true),
            ("journald", cfg!(feature = "stdio-journald")),
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
