//! `inherit`: the container shares psdock's own stdin, stdout and stderr. Picked
//! when no `-stdio` is given. Every build has it (no feature).

use crate::host::Host;
use crate::plugin::{Descriptor, Probe, Stdio, StdioSink, StdioSpec};

struct Inherit;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "inherit",
        feature: "",
        priority: 0,
        summary: "psdock's own stdin, stdout and stderr",
        probe,
        build: Some(|| Box::new(Inherit)),
    }
}

fn probe(_: &Host) -> Probe {
    Ok(())
}

impl StdioSink for Inherit {
    fn open(&self, _: &StdioSpec) -> Result<Stdio, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Stdio::default())
    }
}
