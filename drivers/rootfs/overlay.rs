//! `overlay`: the in-kernel overlay filesystem (Linux 3.18 and later), the image
//! as read-only lower layer(s), upper and work directories in the hidden siblings
//! of the rootfs. Picked first by auto-pick whenever `/proc/filesystems` lists
//! `overlay`. Every build has it (no feature): it is the driver that a
//! `--no-default-features` binary runs with.
//!
//! On Linux 5.10 and later the mount is `volatile`: the upper layer is thrown away
//! when the run ends (and a crashed run's is reclaimed, never mounted again), so
//! syncing it buys nothing. Without it, with the upper directory on disk
//! (`-upper disk`), the unmount at teardown syncs the whole file system that
//! holds it (`syncfs`, a journal commit): about half a millisecond on an idle
//! disk, tens of milliseconds while others write. On a tmpfs it costs nothing.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::host::{self, Host};
use crate::plugin::{Descriptor, MountData, Probe, RootfsDriver, RootfsLayout};

struct Overlay {
    volatile: bool,
}

impl Overlay {
    /// `release` as `uname -r` prints it.
    fn for_kernel(release: &str) -> Self {
        Overlay {
            volatile: host::version_of(release).is_some_and(|v| v >= (5, 10)),
        }
    }
}

inventory::submit! {
    Descriptor::<dyn RootfsDriver> {
        name: "overlay",
        feature: "",
        priority: 300,
        summary: "in-kernel overlay (kernel 3.18 and later)",
        probe,
        build: Some(|host| Box::new(Overlay::for_kernel(host.kernel_release()))),
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
        if self.volatile {
            data.extend(b",volatile");
        }
        // mount(2) copies at most one page of options: past that the kernel
        // would cut the layer list short, or refuse it with a bare EINVAL.
        // SAFETY: sysconf only reads a constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if data.len() >= page {
            return Err(format!(
                "overlay: the {} layers' paths take {} bytes of mount options, more than the \
                 kernel's {}; a shorter PSDOCK_CACHE_DIR makes them fit",
                layout.lower.len(),
                data.len(),
                page - 1
            ));
        }
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
    fn options_longer_than_a_page_are_refused() {
        let layer = format!("/var/lib/psdock/layers/overlay/sha256/{}", "a".repeat(64));
        let layers: Vec<&str> = std::iter::repeat_n(layer.as_str(), 60).collect();
        let e = Overlay { volatile: false }
            .mount_data(&RootfsLayout::sample(&layers, "/r/.x.psdock-upper"))
            .unwrap_err();
        assert!(e.starts_with("overlay: the 60 layers' paths take "), "{e}");
        assert!(Overlay { volatile: false }
            .mount_data(&RootfsLayout::sample(&layers[..20], "/r/.x.psdock-upper"))
            .is_ok());
    }

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
        let layout = RootfsLayout::sample(&["/l/top", "/l/a:b,c"], "/r/.x.psdock-upper");
        let m = Overlay { volatile: false }.mount_data(&layout).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(
            m.data.to_str().unwrap(),
            r"lowerdir=/l/top:/l/a\:b\,c,upperdir=/r/.x.psdock-upper,workdir=/r/.x.psdock"
        );
        let m = Overlay { volatile: true }.mount_data(&layout).unwrap();
        assert_eq!(
            m.data.to_str().unwrap(),
            r"lowerdir=/l/top:/l/a\:b\,c,upperdir=/r/.x.psdock-upper,workdir=/r/.x.psdock,volatile"
        );
    }

    #[test]
    fn volatile_from_linux_5_10_on() {
        assert!(!Overlay::for_kernel("5.9.16-1-amd64").volatile);
        assert!(Overlay::for_kernel("5.10.0-28-amd64").volatile);
        assert!(Overlay::for_kernel("6.18.44-fc-v782").volatile);
        assert!(!Overlay::for_kernel("").volatile);
    }
}
