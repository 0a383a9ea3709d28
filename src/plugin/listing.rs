//! `psdock -list-drivers`: every implementation of every kind in this build,
//! compiled in or not, and what its probe says about this host.

use serde::Serialize;

use super::registry::{Descriptor, Kind, Registry};
use super::{NetworkDriver, Notifier, PortProbe, RootfsDriver, StdioSink};
use crate::host::Host;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KindListing {
    pub kind: &'static str,
    pub implementations: Vec<Implementation>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Implementation {
    pub name: &'static str,
    /// `None` when compiled out: the priority lives with the code.
    pub priority: Option<u32>,
    pub compiled_in: bool,
    /// The feature that compiles it in; `None` for the baseline every build has.
    pub feature: Option<&'static str>,
    pub summary: &'static str,
    pub usable: bool,
    /// Why not, when it is not usable.
    pub reason: Option<String>,
}

fn implementation<T: ?Sized>(d: &Descriptor<T>, host: &Host) -> Implementation {
    let verdict = if d.compiled_in() {
        (d.probe)(host)
    } else {
        Err(format!(
            "not compiled in (build with --features {})",
            d.feature
        ))
    };
    Implementation {
        name: d.name,
        priority: d.compiled_in().then_some(d.priority),
        compiled_in: d.compiled_in(),
        feature: (!d.feature.is_empty()).then_some(d.feature),
        summary: d.summary,
        usable: verdict.is_ok(),
        reason: verdict.err(),
    }
}

fn of<T: ?Sized>(registry: Registry<T>, host: &Host) -> Vec<Implementation> {
    registry
        .entries()
        .iter()
        .map(|d| implementation(d, host))
        .collect()
}

/// Every kind in [`Kind::ALL`] order, each with its implementations in the order
/// auto-pick tries them.
pub fn list(host: &Host) -> Vec<KindListing> {
    Kind::ALL
        .into_iter()
        .map(|kind| KindListing {
            kind: kind.as_str(),
            implementations: match kind {
                Kind::Rootfs => of(Registry::<dyn RootfsDriver>::new(kind), host),
                Kind::Stdio => of(Registry::<dyn StdioSink>::new(kind), host),
                Kind::Ports => of(Registry::<dyn PortProbe>::new(kind), host),
                Kind::Notify => of(Registry::<dyn Notifier>::new(kind), host),
                Kind::Net => of(Registry::<dyn NetworkDriver>::new(kind), host),
            },
        })
        .collect()
}

/// The listing as text (one block per kind) or as one JSON document.
pub fn render(listing: &[KindListing], json: bool) -> String {
    if json {
        let mut text = serde_json::to_string_pretty(listing).expect("plain data serializes");
        text.push('\n');
        return text;
    }
    let mut text = String::new();
    for kind in listing {
        text.push_str(kind.kind);
        text.push_str(":\n");
        if kind.implementations.is_empty() {
            text.push_str("  (none in this build)\n");
        }
        for i in &kind.implementations {
            let priority = i.priority.map_or("-".into(), |p| p.to_string());
            let build = match (i.compiled_in, i.feature) {
                (true, None) => "built in",
                (true, Some(_)) => "compiled in",
                (false, _) => "compiled out",
            };
            let verdict = match &i.reason {
                None => "usable".to_owned(),
                Some(why) if i.compiled_in => format!("rejected: {why}"),
                // Already says that it is not compiled in, and how to change that.
                Some(why) => why.clone(),
            };
            text.push_str(&format!(
                "  {:<18} {:>8}  {:<12}  {verdict}\n",
                i.name, priority, build
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_and_the_baseline_is_usable_here_and_there() {
        let host = Host::snapshot("nodev\toverlay\n", "6.18.0");
        let listing = list(&host);
        let kinds: Vec<_> = listing.iter().map(|k| k.kind).collect();
        assert_eq!(kinds, ["rootfs", "stdio", "ports", "notify", "net"]);
        let overlay = &listing[0].implementations[0];
        assert_eq!(
            (overlay.name, overlay.usable, overlay.feature),
            ("overlay", true, None)
        );
        let no_overlay = list(&Host::snapshot("nodev\ttmpfs\n", "6.18.0"));
        assert_eq!(
            no_overlay[0].implementations[0].reason.as_deref(),
            Some("`overlay` is not listed in /proc/filesystems")
        );
    }

    #[test]
    fn text_and_json_say_the_same() {
        let listing = vec![KindListing {
            kind: "rootfs",
            implementations: vec![
                Implementation {
                    name: "overlay",
                    priority: Some(300),
                    compiled_in: true,
                    feature: None,
                    summary: "in-kernel overlay",
                    usable: true,
                    reason: None,
                },
                Implementation {
                    name: "aufs",
                    priority: Some(100),
                    compiled_in: true,
                    feature: Some("rootfs-aufs"),
                    summary: "",
                    usable: false,
                    reason: Some("`aufs` is not listed in /proc/filesystems".into()),
                },
                Implementation {
                    name: "zfs",
                    priority: None,
                    compiled_in: false,
                    feature: Some("rootfs-zfs"),
                    summary: "",
                    usable: false,
                    reason: Some("not compiled in (build with --features rootfs-zfs)".into()),
                },
            ],
        }];
        assert_eq!(
            render(&listing, false),
            "rootfs:\n  \
             overlay                 300  built in      usable\n  \
             aufs                    100  compiled in   rejected: `aufs` is not listed in /proc/filesystems\n  \
             zfs                       -  compiled out  not compiled in (build with --features rootfs-zfs)\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render(&listing, true)).unwrap();
        assert_eq!(json[0]["kind"], "rootfs");
        assert_eq!(json[0]["implementations"][1]["name"], "aufs");
        assert_eq!(json[0]["implementations"][1]["usable"], false);
        assert_eq!(
            json[0]["implementations"][2]["priority"],
            serde_json::Value::Null
        );
        assert_eq!(json[0]["implementations"][2]["compiled_in"], false);
    }
}
