//! The names of the rootfs drivers this build leaves out, with their features.
//! (`overlay` is in every build.)

crate::disabled!(RootfsDriver, "overlayfs-legacy", "rootfs-overlayfs-legacy");
crate::disabled!(RootfsDriver, "aufs", "rootfs-aufs");

#[cfg(test)]
mod tests {
    use crate::host::Host;
    use crate::plugin::{Kind, PickError, Registry, RootfsDriver};

    fn registry() -> Registry<dyn RootfsDriver> {
        Registry::new(Kind::Rootfs)
    }

    const OPTIONAL: [(&str, &str, bool); 2] = [
        (
            "overlayfs-legacy",
            "rootfs-overlayfs-legacy",
            cfg!(feature = "rootfs-overlayfs-legacy"),
        ),
        ("aufs", "rootfs-aufs", cfg!(feature = "rootfs-aufs")),
    ];

    /// Whatever the feature set, every driver is known by name: the compiled-in
    /// ones by priority, then the compiled-out ones.
    #[test]
    fn every_driver_is_registered_in_priority_order() {
        let names: Vec<_> = registry().entries().iter().map(|d| d.name).collect();
        let mut expected = vec!["overlay"];
        expected.extend(OPTIONAL.iter().filter(|o| o.2).map(|o| o.0));
        // A compiled-out driver's priority went with its code: they sort by name.
        let mut out: Vec<_> = OPTIONAL.iter().filter(|o| !o.2).map(|o| o.0).collect();
        out.sort();
        expected.extend(out);
        assert_eq!(names, expected);
    }

    #[test]
    fn auto_pick_says_why_each_driver_was_rejected() {
        let host = Host::snapshot("nodev\ttmpfs\n\text4\n", "6.18.44");
        let text = registry().auto(&host).err().unwrap().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "no usable rootfs implementation on this host");
        assert_eq!(
            lines[1],
            "  overlay            rejected: `overlay` is not listed in /proc/filesystems"
        );
        for (name, feature, on) in OPTIONAL {
            let line = lines
                .iter()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap();
            if on {
                assert!(line.contains("rejected: "), "{line}");
            } else {
                assert!(
                    line.ends_with(&format!(
                        "not compiled in (build with --features {feature})"
                    )),
                    "{line}"
                );
            }
        }
        assert!(lines.last().unwrap().starts_with("hint: "), "{text}");
    }

    #[test]
    fn asking_for_a_compiled_out_driver_names_its_feature() {
        // A host on which every driver would be usable.
        let host = Host::snapshot("nodev\taufs\nnodev\toverlayfs\nnodev\toverlay\n", "3.13.0");
        for (name, feature, on) in OPTIONAL {
            match registry().by_name(name, &host) {
                Ok(_) => assert!(on, "{name} built without its feature"),
                Err(e) => {
                    assert!(!on, "{name}: {e}");
                    assert_eq!(
                        e,
                        PickError::CompiledOut {
                            kind: Kind::Rootfs,
                            name: registry()
                                .entries()
                                .iter()
                                .find(|d| d.name == name)
                                .unwrap()
                                .name,
                            feature,
                        }
                    );
                }
            }
        }
    }
}
