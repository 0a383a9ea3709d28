//! `aufs`: the out-of-tree union filesystem (Ubuntu and Debian kernels of the
//! 3.x era, docker's first storage driver): the upper directory as the one
//! writable branch over the layers, read-only. Tried last by auto-pick; usable
//! when `/proc/filesystems` lists `aufs` (psdock never loads the module).
//! aufs reads whiteouts in their OCI form (`.wh.NAME`, `.wh..wh..opq`), so the
//! layers it stacks are unpacked as they are, without conversion.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::host::Host;
use crate::plugin::{Descriptor, MountData, Probe, RootfsDriver, RootfsLayout, Whiteouts};

struct Aufs;

inventory::submit! {
    Descriptor::<dyn RootfsDriver> {
        name: "aufs",
        feature: "rootfs-aufs",
        priority: 100,
        summary: "aufs branches: the upper rw over the layers ro",
        probe,
        build: Some(|_| Box::new(Aufs)),
    }
}

fn probe(host: &Host) -> Probe {
    if host.has_filesystem("aufs") {
        Ok(())
    } else {
        Err("`aufs` is not listed in /proc/filesystems".into())
    }
}

/// aufs splits `br=` on `:` and the options on `,`, with no escape.
fn branch(path: &Path, mode: &[u8]) -> Result<Vec<u8>, String> {
    let bytes = path.as_os_str().as_bytes();
    if let Some(c) = bytes.iter().find(|b| matches!(b, b':' | b',' | b'=')) {
        return Err(format!(
            "aufs cannot mount a path containing `{}`: {}",
            *c as char,
            path.display()
        ));
    }
    Ok([bytes, b"=", mode].concat())
}

impl RootfsDriver for Aufs {
    fn mount_data(&self, layout: &RootfsLayout) -> Result<MountData, String> {
        let mut branches = vec![branch(&layout.upper, b"rw")?];
        for lower in &layout.lower {
            branches.push(branch(lower, b"ro")?);
        }
        let data = [b"br=".to_vec(), branches.join(&b':')].concat();
        Ok(MountData {
            fstype: "aufs",
            data: CString::new(data).expect("paths have no NUL byte"),
        })
    }

    fn whiteouts(&self) -> Whiteouts {
        Whiteouts::Aufs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/filesystems` of a Debian 8 (3.16) kernel with the aufs module loaded.
    const JESSIE_AUFS: &str =
        "nodev\tsysfs\nnodev\trootfs\nnodev\ttmpfs\n\text4\nnodev\taufs\nnodev\toverlay\n";
    const MODERN: &str = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";

    #[test]
    fn probe_reads_proc_filesystems_only() {
        assert_eq!(
            probe(&Host::snapshot(JESSIE_AUFS, "3.16.0-4-amd64")),
            Ok(())
        );
        // aufs does not care about the kernel version, only about the module.
        assert_eq!(probe(&Host::snapshot(JESSIE_AUFS, "6.18.0")), Ok(()));
        assert_eq!(
            probe(&Host::snapshot(MODERN, "6.18.44-fc-v782")).unwrap_err(),
            "`aufs` is not listed in /proc/filesystems"
        );
    }

    #[test]
    fn mount_options_put_upper_rw_over_the_layers_top_first() {
        let m = Aufs
            .mount_data(&RootfsLayout::sample(
                &["/c/top", "/c/base"],
                "/r/.x.psdock-upper",
            ))
            .unwrap();
        assert_eq!(m.fstype, "aufs");
        assert_eq!(
            m.data.to_str().unwrap(),
            "br=/r/.x.psdock-upper=rw:/c/top=ro:/c/base=ro"
        );
        assert_eq!(Aufs.whiteouts(), Whiteouts::Aufs);
    }

    #[test]
    fn paths_aufs_cannot_express_are_errors() {
        for bad in ["/a:b", "/a,b", "/a=b"] {
            let e = Aufs
                .mount_data(&RootfsLayout::sample(&[bad], "/u"))
                .unwrap_err();
            assert!(e.starts_with("aufs cannot mount a path containing"), "{e}");
        }
    }
}
