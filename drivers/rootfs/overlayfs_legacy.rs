//! `overlayfs-legacy`: the `overlayfs` filesystem of kernels before 3.18 (the
//! out-of-tree patches that Ubuntu and others carried): one read-only lower
//! directory and one upper directory, no work directory, no way to stack layers.
//! Auto-pick tries it after `overlay`; it is usable only on such an old kernel
//! that lists `overlayfs` in `/proc/filesystems`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::host::Host;
use crate::plugin::{Descriptor, MountData, Probe, RootfsDriver, RootfsLayout};

struct OverlayfsLegacy;

inventory::submit! {
    Descriptor::<dyn RootfsDriver> {
        name: "overlayfs-legacy",
        feature: "rootfs-overlayfs-legacy",
        priority: 200,
        summary: "pre-3.18 `overlayfs`: one lower directory, no workdir",
        probe,
        build: Some(|_| Box::new(OverlayfsLegacy)),
    }
}

fn probe(host: &Host) -> Probe {
    match host.kernel_version() {
        Some(v) if v < (3, 18) => {}
        Some((major, minor)) => {
            return Err(format!(
                "needs a kernel before 3.18 (this is {major}.{minor})"
            ))
        }
        None => {
            return Err(format!(
                "cannot read the kernel version from `{}`",
                host.kernel_release()
            ))
        }
    }
    if host.has_filesystem("overlayfs") {
        Ok(())
    } else {
        Err("`overlayfs` is not listed in /proc/filesystems".into())
    }
}

/// The old option parser splits on `,` and knows no escape.
fn path(path: &Path) -> Result<&[u8], String> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&b',') {
        return Err(format!(
            "overlayfs-legacy cannot mount a path containing `,`: {}",
            path.display()
        ));
    }
    Ok(bytes)
}

impl RootfsDriver for OverlayfsLegacy {
    fn mount_data(&self, layout: &RootfsLayout) -> Result<MountData, String> {
        let [lower] = layout.lower.as_slice() else {
            return Err(format!(
                "overlayfs-legacy stacks one lower directory, not {}",
                layout.lower.len()
            ));
        };
        let data = [
            b"lowerdir=",
            path(lower)?,
            b",upperdir=",
            path(&layout.upper)?,
        ]
        .concat();
        Ok(MountData {
            fstype: "overlayfs",
            data: CString::new(data).expect("paths have no NUL byte"),
        })
    }

    fn max_layers(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/filesystems` of an Ubuntu 14.04 kernel (3.13) with overlayfs loaded.
    const TRUSTY: &str =
        "nodev\tsysfs\nnodev\trootfs\nnodev\ttmpfs\n\text3\n\text4\nnodev\toverlayfs\n";
    /// The same kernel before the module was loaded.
    const TRUSTY_BARE: &str = "nodev\tsysfs\nnodev\trootfs\nnodev\ttmpfs\n\text3\n\text4\n";
    /// A current kernel: in-tree `overlay`, no `overlayfs`.
    const MODERN: &str = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";

    #[test]
    fn probe_wants_an_old_kernel_listing_overlayfs() {
        assert_eq!(probe(&Host::snapshot(TRUSTY, "3.13.0-24-generic")), Ok(()));
        assert_eq!(
            probe(&Host::snapshot(TRUSTY_BARE, "3.13.0-24-generic")).unwrap_err(),
            "`overlayfs` is not listed in /proc/filesystems"
        );
        assert_eq!(
            probe(&Host::snapshot(MODERN, "6.18.44-fc-v782")).unwrap_err(),
            "needs a kernel before 3.18 (this is 6.18)"
        );
        // A 3.18+ kernel that still registers the old name is not the old filesystem.
        assert!(probe(&Host::snapshot(TRUSTY, "3.19.0-15-generic")).is_err());
        assert!(probe(&Host::snapshot(TRUSTY, "garbage")).is_err());
    }

    #[test]
    fn mount_options_have_one_lower_and_no_workdir() {
        let m = OverlayfsLegacy
            .mount_data(&RootfsLayout::sample(&["/img:1"], "/r/.x.psdock-upper"))
            .unwrap();
        assert_eq!(m.fstype, "overlayfs");
        assert_eq!(
            m.data.to_str().unwrap(),
            "lowerdir=/img:1,upperdir=/r/.x.psdock-upper"
        );
    }

    #[test]
    fn what_it_cannot_express_is_an_error() {
        assert_eq!(
            OverlayfsLegacy
                .mount_data(&RootfsLayout::sample(&["/a", "/b"], "/u"))
                .unwrap_err(),
            "overlayfs-legacy stacks one lower directory, not 2"
        );
        assert!(OverlayfsLegacy
            .mount_data(&RootfsLayout::sample(&["/a,b"], "/u"))
            .unwrap_err()
            .contains("`,`"));
    }
}
