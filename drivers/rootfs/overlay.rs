//! `overlay`: the in-kernel overlay filesystem (Linux 3.18 and later), the image
//! as read-only lower layer(s), upper and work directories in the hidden sibling
//! of the rootfs. Picked first by auto-pick whenever `/proc/filesystems` lists
//! `overlay`. Every build has it (no feature): it is the driver that a
//! `--no-default-features` binary runs with.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::host::Host;
use crate::plugin::{Descriptor, MountData, Probe, RootfsDriver, RootfsLayout};

struct Overlay;

inventory::submit! {
    Descriptor::<dyn RootfsDriver> {
        name: "overlay",
        feature: "",
        priority: 300,
        summary: "in-kernel overlay (kernel 3.18 and later)",
        probe,
        build: Some(|| Box::new(Overlay)),
    }
}

fn probe(host: &Host) -> Probe {
    if host.has_filesystem("overlay") {
        Ok(())
    } else {
        Err("`overlay` is not listed in /proc/filesystems".into())
    }
}

/// Overlay option values separate paths with `:` and `,`; a backslash escapes them.
fn escape(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if matches!(b, b':' | b',' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

impl RootfsDriver for Overlay {
    fn mount_data(&self, layout: &RootfsLayout) -> Result<MountData, String> {
        let mut data = b"lowerdir=".to_vec();
        for (i, lower) in layout.lower.iter().enumerate() {
            if i > 0 {
                data.push(b':');
            }
            data.extend(escape(lower));
        }
        data.extend(b",upperdir=");
        data.extend(escape(&layout.upper));
        data.extend(b",workdir=");
        data.extend(escape(&layout.work));
        Ok(MountData {
            fstype: "overlay",
            data: CString::new(data).expect("paths have no NUL byte"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_proc_filesystems() {
        assert!(probe(&Host::snapshot("nodev\toverlay\n", "6.1.0")).is_ok());
        assert_eq!(
            probe(&Host::snapshot("nodev\toverlayfs\n\text4\n", "3.13.0")).unwrap_err(),
            "`overlay` is not listed in /proc/filesystems"
        );
    }

    #[test]
    fn mount_options_stack_layers_top_first_and_escape() {
        let layout = RootfsLayout::sample(&["/l/top", "/l/a:b,c"], "/r/.x.psdock/upper");
        let m = Overlay.mount_data(&layout).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(
            m.data.to_str().unwrap(),
            r"lowerdir=/l/top:/l/a\:b\,c,upperdir=/r/.x.psdock/upper,workdir=/r/.x.psdock/work"
        );
    }
}
