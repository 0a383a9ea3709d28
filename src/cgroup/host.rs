//! How this host's cgroups are set up, and whether it can apply what was
//! asked: probed when a cgroup is about to be made, never at start-up.

use std::path::{Path, PathBuf};

use libcgroups::common::CgroupSetup;

use super::CgroupError;
use crate::spec::limits::{Limits, Swap};

/// The cgroup hierarchies psdock works with.
#[derive(Debug, Clone)]
pub enum Hierarchy {
    /// cgroup v1: one mount per controller (or group of controllers).
    V1 {
        /// Controller name and its mount point, as libcgroups finds them.
        mounts: Vec<(String, PathBuf)>,
    },
    /// cgroup v2: one tree.
    V2 { root: PathBuf },
}

impl Hierarchy {
    pub fn probe() -> Result<Hierarchy, CgroupError> {
        let detect = |e: &dyn std::fmt::Display| CgroupError::Detect(e.to_string());
        match libcgroups::common::get_cgroup_setup().map_err(|e| detect(&e))? {
            // Hybrid: the unified mount has no controllers worth the name
            // (hugetlb at most here); limits are v1's.
            CgroupSetup::Legacy | CgroupSetup::Hybrid => {
                let mounts = libcgroups::v1::util::list_supported_mount_points()
                    .map_err(|e| detect(&e))?
                    .into_iter()
                    .map(|(c, p)| (c.to_string(), p))
                    .collect();
                Ok(Hierarchy::V1 { mounts })
            }
            CgroupSetup::Unified => Ok(Hierarchy::V2 {
                root: PathBuf::from(libcgroups::common::DEFAULT_CGROUP_ROOT),
            }),
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    /// Where the cgroup named `path` (below the root of each hierarchy) is
    /// for `controller`; on v2 every controller shares the one directory.
    pub fn dir(&self, controller: &str, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Hierarchy::V1 { mounts } => mounts
                .iter()
                .find(|(c, _)| c == controller)
                .map(|(_, m)| m.join(rel)),
            Hierarchy::V2 { root } => Some(root.join(rel)),
        }
    }

    /// Every directory the cgroup `path` has: one per v1 hierarchy, or one.
    pub fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Hierarchy::V1 { mounts } => mounts.iter().map(|(_, m)| m.join(rel)).collect(),
            Hierarchy::V2 { root } => vec![root.join(rel)],
        }
    }

    /// Where a container's cgroup goes. On v2, under psdock's own cgroup when
    /// systemd delegated it (`Delegate=yes` marks it with a `delegate`
    /// extended attribute), so that the unit's limits hold the container
    /// too; else, as on v1, under `/psdock` at the top.
    pub fn parent(&self) -> PathBuf {
        if let Hierarchy::V2 { root } = self {
            if let Some(own) = own_v2_cgroup() {
                let dir = root.join(own.strip_prefix("/").unwrap_or(&own));
                if own != Path::new("/") && delegated(&dir) {
                    return own;
                }
            }
        }
        PathBuf::from("/psdock")
    }

    /// The controllers the limits need, by the name this hierarchy gives
    /// them, each with the flag that asked for it.
    pub fn needed(&self, limits: &Limits) -> Vec<(&'static str, &'static str)> {
        let v2 = self.is_v2();
        let mut needed = Vec::new();
        let mut need = |asked: bool, controller, flag| {
            if asked {
                needed.push((controller, flag));
            }
        };
        need(limits.memory.is_some(), "memory", "memory");
        need(
            limits.memory_reservation.is_some(),
            "memory",
            "memory-reservation",
        );
        need(limits.cpu_quota_us.is_some(), "cpu", "cpus");
        need(
            limits.cpu_shares.is_some(),
            "cpu",
            if v2 { "cpu-weight" } else { "cpu-shares" },
        );
        need(limits.cpuset_cpus.is_some(), "cpuset", "cpuset-cpus");
        need(limits.pids.is_some(), "pids", "pids-limit");
        let io = if v2 { "io" } else { "blkio" };
        need(limits.blkio_weight.is_some(), io, "blkio-weight");
        need(!limits.read_bps.is_empty(), io, "device-read-bps");
        need(!limits.write_bps.is_empty(), io, "device-write-bps");
        need(!limits.devices.is_empty() && !v2, "devices", "device");
        needed
    }

    /// Refuses, naming the flag, a limit whose controller this host lacks.
    pub fn check(&self, limits: &Limits, parent: &Path) -> Result<(), CgroupError> {
        let available = match self {
            Hierarchy::V1 { mounts } => mounts.iter().map(|(c, _)| c.clone()).collect(),
            Hierarchy::V2 { root } => {
                let file = root
                    .join(parent.strip_prefix("/").unwrap_or(parent))
                    .join("cgroup.controllers");
                // The parent is made later: its own parent offers the same.
                let file = if file.exists() {
                    file
                } else {
                    root.join("cgroup.controllers")
                };
                std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            }
        };
        let version = if self.is_v2() { "v2" } else { "v1" };
        for (controller, flag) in self.needed(limits) {
            if !available.iter().any(|c| c == controller) {
                return Err(CgroupError::Unsupported {
                    flag,
                    why: format!(
                        "no {controller} controller in this host's cgroup {version} hierarchy \
                         (it has: {})",
                        if available.is_empty() {
                            "none".to_owned()
                        } else {
                            available.join(" ")
                        }
                    ),
                });
            }
        }
        if !limits.devices.is_empty() && self.is_v2() {
            return Err(CgroupError::Unsupported {
                flag: "device",
                why: "device rules on cgroup v2 are BPF programs, which this build of psdock \
                      does not load"
                    .into(),
            });
        }
        if let (Some(_), Hierarchy::V1 { .. }) = (limits.blkio_weight, self) {
            let root = self.dir("blkio", Path::new("/")).unwrap_or_default();
            if !["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .any(|f| root.join(f).exists())
            {
                return Err(CgroupError::Unsupported {
                    flag: "blkio-weight",
                    why: "no I/O scheduler with weights (blkio.weight or blkio.bfq.weight) \
                          on this host"
                        .into(),
                });
            }
        }
        if matches!(limits.swap, Some(Swap::Total(_) | Swap::Unlimited)) && !self.accounts_swap() {
            return Err(CgroupError::Unsupported {
                flag: "memory-swap",
                why: "the kernel does not account for swap (boot with swapaccount=1)".into(),
            });
        }
        Ok(())
    }

    /// Whether memory plus swap can be limited.
    pub fn accounts_swap(&self) -> bool {
        match self {
            Hierarchy::V1 { .. } => self
                .dir("memory", Path::new("/"))
                .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists()),
            // The root has no swap files of its own: a child of it tells.
            Hierarchy::V2 { .. } => Path::new("/proc/swaps").exists(),
        }
    }
}

/// psdock's own cgroup on v2: the `0::` line of /proc/self/cgroup.
fn own_v2_cgroup() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(PathBuf::from)
}

fn delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| xattr_is_set(dir, name))
}

fn xattr_is_set(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; a zero-sized read only asks
    // whether the attribute exists.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}
