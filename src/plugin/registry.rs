use std::fmt;

use crate::host::Host;

/// The plug-in kinds, in the order `-list-drivers` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Rootfs,
    Stdio,
    Ports,
    Notify,
    Net,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Rootfs,
        Kind::Stdio,
        Kind::Ports,
        Kind::Notify,
        Kind::Net,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rootfs => "rootfs",
            Kind::Stdio => "stdio",
            Kind::Ports => "ports",
            Kind::Notify => "notify",
            Kind::Net => "net",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe's verdict: usable, or why not, in words a user can act on.
pub type Probe = Result<(), String>;

/// What an implementation registers. `build` is `None` when its feature is off.
pub struct Descriptor<T: ?Sized + 'static> {
    pub name: &'static str,
    /// The Cargo feature that compiles this implementation in; empty for the
    /// baseline (`overlay`, `inherit`) that every build has.
    pub feature: &'static str,
    /// Auto-pick tries higher priorities first.
    pub priority: u32,
    pub summary: &'static str,
    /// Must not change the host (no module loading, no mounts): it is also run by
    /// `-list-drivers`.
    pub probe: fn(&Host) -> Probe,
    /// Given the host the probe accepted, so that a plug-in that adapts to it
    /// (the overlay's `volatile` on newer kernels) reads it from there.
    pub build: Option<fn(&Host) -> Box<T>>,
}

impl<T: ?Sized> Descriptor<T> {
    pub fn compiled_in(&self) -> bool {
        self.build.is_some()
    }
}

/// The probe of an implementation that needs nothing of the host.
pub fn always_usable(_: &Host) -> Probe {
    Ok(())
}

/// The probe of a compiled-out implementation; never called for a pick.
pub fn not_compiled_in(_: &Host) -> Probe {
    Err("not compiled in".into())
}

/// Registers the name of an implementation whose feature is off, so that asking
/// for it says which feature to enable. Used by the `disabled.rs` of each folder.
#[macro_export]
macro_rules! disabled {
    ($trait:ident, $name:literal, $feature:literal) => {
        #[cfg(not(feature = $feature))]
        inventory::submit! {
            $crate::plugin::Descriptor::<dyn $crate::plugin::$trait> {
                name: $name,
                feature: $feature,
                priority: 0,
                summary: "",
                probe: $crate::plugin::not_compiled_in,
                build: None,
            }
        }
    };
}

inventory::collect!(Descriptor<dyn super::RootfsDriver>);
inventory::collect!(Descriptor<dyn super::StdioSink>);
inventory::collect!(Descriptor<dyn super::PortProbe>);
inventory::collect!(Descriptor<dyn super::Notifier>);
inventory::collect!(Descriptor<dyn super::NetworkDriver>);

/// Why a candidate was passed over during auto-pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub name: &'static str,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    Unusable(String),
    CompiledOut { feature: &'static str },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            RejectReason::Unusable(why) => write!(f, "  {:<18} rejected: {why}", self.name),
            RejectReason::CompiledOut { feature } => write!(
                f,
                "  {:<18} not compiled in (build with --features {feature})",
                self.name
            ),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PickError {
    #[error("unknown {kind} implementation `{name}` (this build has: {known})")]
    Unknown {
        kind: Kind,
        name: String,
        known: String,
    },
    #[error("{kind} implementation `{name}` is not compiled in (build with --features {feature})")]
    CompiledOut {
        kind: Kind,
        name: &'static str,
        feature: &'static str,
    },
    #[error("{kind} implementation `{name}` is not usable on this host: {why}")]
    Unusable {
        kind: Kind,
        name: &'static str,
        why: String,
    },
    #[error("no usable {kind} implementation on this host\n{}\nhint: `psdock -list-drivers` shows what this build has", list(.rejected))]
    NoneUsable {
        kind: Kind,
        rejected: Vec<Rejection>,
    },
}

fn list(rejected: &[Rejection]) -> String {
    rejected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The registry of one kind: every descriptor registered for it, sorted by
/// priority (highest first) then name, because inventory has no order.
pub struct Registry<T: ?Sized + 'static> {
    kind: Kind,
    entries: Vec<&'static Descriptor<T>>,
}

impl<T: ?Sized + 'static> Registry<T>
where
    Descriptor<T>: inventory::Collect,
{
    pub fn new(kind: Kind) -> Self {
        Self::from_entries(kind, inventory::iter::<Descriptor<T>>.into_iter().collect())
    }
}

impl<T: ?Sized + 'static> Registry<T> {
    pub fn from_entries(kind: Kind, mut entries: Vec<&'static Descriptor<T>>) -> Self {
        entries.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(b.name)));
        Self { kind, entries }
    }

    pub fn entries(&self) -> &[&'static Descriptor<T>] {
        &self.entries
    }

    /// Names of the implementations compiled into this build.
    pub fn compiled_in(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter(|d| d.compiled_in())
            .map(|d| d.name)
            .collect()
    }

    /// An explicit choice: no fallback, and the error says why it cannot be used.
    pub fn by_name(&self, name: &str, host: &Host) -> Result<Box<T>, PickError> {
        let Some(d) = self.entries.iter().find(|d| d.name == name) else {
            return Err(PickError::Unknown {
                kind: self.kind,
                name: name.to_owned(),
                known: self.compiled_in().join(", "),
            });
        };
        let Some(build) = d.build else {
            return Err(PickError::CompiledOut {
                kind: self.kind,
                name: d.name,
                feature: d.feature,
            });
        };
        (d.probe)(host).map_err(|why| PickError::Unusable {
            kind: self.kind,
            name: d.name,
            why,
        })?;
        Ok(build(host))
    }

    /// Auto-pick: the first compiled-in implementation, by priority, whose probe
    /// accepts this host; otherwise an error that lists every candidate and why.
    pub fn auto(&self, host: &Host) -> Result<(&'static str, Box<T>), PickError> {
        let mut rejected = Vec::new();
        for d in &self.entries {
            let reason = match (d.build, (d.probe)(host)) {
                (Some(build), Ok(())) => return Ok((d.name, build(host))),
                (None, _) => RejectReason::CompiledOut { feature: d.feature },
                (Some(_), Err(why)) => RejectReason::Unusable(why),
            };
            rejected.push(Rejection {
                name: d.name,
                reason,
            });
        }
        Err(PickError::NoneUsable {
            kind: self.kind,
            rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Fake {
        fn name(&self) -> &'static str;
    }
    struct A;
    impl Fake for A {
        fn name(&self) -> &'static str {
            "a"
        }
    }
    struct B;
    impl Fake for B {
        fn name(&self) -> &'static str {
            "b"
        }
    }

    fn ok(_: &Host) -> Probe {
        Ok(())
    }
    fn no(_: &Host) -> Probe {
        Err("missing from /proc/filesystems".into())
    }

    static HIGH_UNUSABLE: Descriptor<dyn Fake> = Descriptor {
        name: "high",
        feature: "fake-high",
        priority: 30,
        summary: "",
        probe: no,
        build: Some(|_| Box::new(A)),
    };
    static MID_OUT: Descriptor<dyn Fake> = Descriptor {
        name: "mid",
        feature: "fake-mid",
        priority: 20,
        summary: "",
        probe: not_compiled_in,
        build: None,
    };
    static LOW_OK: Descriptor<dyn Fake> = Descriptor {
        name: "low",
        feature: "fake-low",
        priority: 10,
        summary: "",
        probe: ok,
        build: Some(|_| Box::new(B)),
    };

    fn reg(entries: Vec<&'static Descriptor<dyn Fake>>) -> Registry<dyn Fake> {
        Registry::from_entries(Kind::Rootfs, entries)
    }

    #[test]
    fn auto_pick_skips_unusable_and_compiled_out_by_priority() {
        let r = reg(vec![&LOW_OK, &HIGH_UNUSABLE, &MID_OUT]);
        let (name, built) = r.auto(&Host::snapshot("", "6.1.0")).unwrap();
        assert_eq!((name, built.name()), ("low", "b"));
    }

    #[test]
    fn auto_pick_lists_every_rejection() {
        let r = reg(vec![&MID_OUT, &HIGH_UNUSABLE]);
        let err = r.auto(&Host::snapshot("", "6.1.0")).err().unwrap();
        let text = err.to_string();
        assert_eq!(
            text,
            "no usable rootfs implementation on this host\n  \
             high               rejected: missing from /proc/filesystems\n  \
             mid                not compiled in (build with --features fake-mid)\n\
             hint: `psdock -list-drivers` shows what this build has"
        );
    }

    #[test]
    fn explicit_choice_has_no_fallback() {
        let r = reg(vec![&LOW_OK, &HIGH_UNUSABLE, &MID_OUT]);
        let host = Host::snapshot("", "6.1.0");
        assert_eq!(
            r.by_name("high", &host).err().unwrap(),
            PickError::Unusable {
                kind: Kind::Rootfs,
                name: "high",
                why: "missing from /proc/filesystems".into()
            }
        );
        assert_eq!(
            r.by_name("mid", &host).err().unwrap().to_string(),
            "rootfs implementation `mid` is not compiled in (build with --features fake-mid)"
        );
        assert_eq!(
            r.by_name("nope", &host).err().unwrap().to_string(),
            "unknown rootfs implementation `nope` (this build has: high, low)"
        );
        assert_eq!(r.by_name("low", &host).unwrap().name(), "b");
    }
}
