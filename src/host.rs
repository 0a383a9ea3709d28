//! Facts about the host that plug-in probes decide on, read once per run.

/// What probes may look at. Built from the live host by [`Host::read`], or from
/// recorded text by [`Host::snapshot`] so that probes can be tested against hosts
/// we do not have (a kernel with aufs, one before 3.18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    filesystems: Vec<String>,
    kernel: String,
}

impl Host {
    pub fn read() -> Self {
        let filesystems = crate::proc::read("/proc/filesystems").unwrap_or_default();
        Self::snapshot(&String::from_utf8_lossy(&filesystems), &running_kernel())
    }

    /// `filesystems` in the format of `/proc/filesystems`, `kernel` as `uname -r`.
    pub fn snapshot(filesystems: &str, kernel: &str) -> Self {
        let filesystems = filesystems
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .map(str::to_owned)
            .collect();
        Self {
            filesystems,
            kernel: kernel.to_owned(),
        }
    }

    pub fn has_filesystem(&self, name: &str) -> bool {
        self.filesystems.iter().any(|f| f == name)
    }

    pub fn kernel_release(&self) -> &str {
        &self.kernel
    }

    /// `(major, minor)` of the running kernel, if the release string parses.
    pub fn kernel_version(&self) -> Option<(u32, u32)> {
        version_of(&self.kernel)
    }
}

/// The release of the running kernel, as `uname -r` prints it.
pub fn running_kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `(major, minor)` of a kernel release string, if it parses.
pub fn version_of(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether an executable file named `tool` is in one of `path`'s directories
/// (a `PATH` value), where `Command` would find it; whether it works shows
/// when it is run.
pub fn on_path(tool: &str, path: &std::ffi::OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path).any(|dir| {
        std::fs::metadata(dir.join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_filesystems_and_release() {
        let h = Host::snapshot("nodev\tsysfs\n\text4\nnodev\toverlay\n", "6.18.44-fc-v782");
        assert!(h.has_filesystem("overlay"));
        assert!(h.has_filesystem("ext4"));
        assert!(!h.has_filesystem("nodev"));
        assert_eq!(h.kernel_version(), Some((6, 18)));
        assert_eq!(
            Host::snapshot("", "3.13.0-24-generic").kernel_version(),
            Some((3, 13))
        );
        assert_eq!(Host::snapshot("", "").kernel_version(), None);
    }
}
