//! One container's cgroup: made with its limits before the clone, joined by
//! the init at its exec stop, removed (processes first) at the end.

use std::path::{Path, PathBuf};

use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt};

use super::host::Hierarchy;
use super::{resources, CgroupError};
use crate::spec::limits::{Limits, OomStrategy, Swap};

/// A container's cgroup, made by [`Cgroup::create`] or found again from its
/// recorded path by [`Cgroup::open`].
pub struct Cgroup {
    /// Below the root of each hierarchy, e.g. `/psdock/psdock_0a1b2c3`.
    path: PathBuf,
    hierarchy: Hierarchy,
    manager: AnyCgroupManager,
}

impl std::fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgroup").field("path", &self.path).finish()
    }
}

/// A cgroup decided on (its path) and checked against the host, not yet made:
/// the state record takes the path first, so that a psdock killed while the
/// cgroup is being made leaves it to the reclaim.
pub struct Planned {
    path: PathBuf,
    hierarchy: Hierarchy,
}

impl Planned {
    /// Refuses a limit the host cannot apply, before anything is made.
    pub fn new(id: &str, limits: &Limits) -> Result<Planned, CgroupError> {
        let hierarchy = Hierarchy::probe()?;
        let parent = hierarchy.parent();
        hierarchy.check(limits, &parent)?;
        Ok(Planned {
            path: parent.join(id),
            hierarchy,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the cgroup and applies the limits; on failure removes what it made.
    pub fn create(self, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let cgroup = Cgroup::with(self.path, self.hierarchy)?;
        match cgroup.make(limits) {
            Ok(()) => Ok(cgroup),
            Err(e) => {
                let _ = cgroup.remove();
                Err(e)
            }
        }
    }
}

impl Cgroup {
    fn with(path: PathBuf, hierarchy: Hierarchy) -> Result<Cgroup, CgroupError> {
        let manager = match &hierarchy {
            Hierarchy::V1 { .. } => libcgroups::v1::manager::Manager::new(&path)
                .map(libcgroups::v1::manager::Manager::any)
                .map_err(|e| e.to_string()),
            Hierarchy::V2 { root } => {
                libcgroups::v2::manager::Manager::new(root.clone(), path.clone())
                    .map(libcgroups::v2::manager::Manager::any)
                    .map_err(|e| e.to_string())
            }
        }
        .map_err(|why| CgroupError::Apply {
            path: path.clone(),
            why,
        })?;
        Ok(Cgroup {
            path,
            hierarchy,
            manager,
        })
    }

    /// The cgroup a state record names, on this host's hierarchy.
    pub fn open(path: &Path) -> Result<Cgroup, CgroupError> {
        Cgroup::with(path.to_owned(), Hierarchy::probe()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same cgroup.
    pub fn try_clone(&self) -> Result<Cgroup, CgroupError> {
        Cgroup::with(self.path.clone(), self.hierarchy.clone())
    }

    fn make(&self, limits: &Limits) -> Result<(), CgroupError> {
        let created = |path: &Path| {
            let path = path.to_owned();
            move |source| CgroupError::Create { path, source }
        };
        match &self.hierarchy {
            Hierarchy::V1 { .. } => {
                for dir in self.hierarchy.dirs(&self.path) {
                    std::fs::create_dir_all(&dir).map_err(created(&dir))?;
                }
                self.fill_cpuset()?;
            }
            Hierarchy::V2 { root } => {
                // Each level hands the controllers down to the next:
                // a child can only use what its parent enabled for it.
                let controllers: Vec<_> = self.hierarchy.needed(limits);
                let mut dir = root.clone();
                for part in self.path.iter().skip(1) {
                    for (c, _) in &controllers {
                        let file = dir.join("cgroup.subtree_control");
                        std::fs::write(&file, format!("+{c}")).map_err(created(&file))?;
                    }
                    dir.push(part);
                    match std::fs::create_dir(&dir) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                            return Err(created(&dir)(e))
                        }
                        _ => {}
                    }
                }
            }
        }
        let resources = resources::of(limits, self.hierarchy.accounts_swap(), !self.is_v2());
        let opt = ControllerOpt {
            resources: &resources,
            // -oom kill on v1: the kernel holds whatever hits the limit
            // instead of killing it, and psdock ends the whole container at
            // once; with the kernel's kill, the rest of the container would
            // run on until psdock heard of it.
            disable_oom_killer: !self.is_v2() && limits.oom != OomStrategy::Notify,
            oom_score_adj: None,
            freezer_state: None,
        };
        self.manager.apply(&opt).map_err(|e| CgroupError::Apply {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        // v2 has the kernel kill the whole cgroup at once.
        if self.is_v2() && limits.oom != OomStrategy::Notify {
            let file = self.memory_dir().join("memory.oom.group");
            std::fs::write(&file, "1").map_err(|e| CgroupError::Apply {
                path: file,
                why: e.to_string(),
            })?;
        }
        // libcgroups 0.7 leaves memory.swap.max at `max` when memory plus
        // swap equals memory (docker's "no swap").
        if let (true, Some(m), Some(Swap::Total(t))) =
            (self.hierarchy.is_v2(), limits.memory, limits.swap)
        {
            if m == t {
                let dir = self.hierarchy.dirs(&self.path).remove(0);
                let file = dir.join("memory.swap.max");
                std::fs::write(&file, "0").map_err(|e| CgroupError::Apply {
                    path: file,
                    why: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// v1's cpuset refuses tasks (ENOSPC) while its `cpuset.cpus` or
    /// `cpuset.mems` is empty, as a new directory's are: each level takes its
    /// parent's. libcgroups does the same in its own join, but a process
    /// that joins by itself (psdock-exec's, `-init`'s PID 1) writes
    /// `cgroup.procs` directly.
    fn fill_cpuset(&self) -> Result<(), CgroupError> {
        let Hierarchy::V1 { mounts } = &self.hierarchy else {
            return Ok(());
        };
        let Some((_, root)) = mounts.iter().find(|(c, _)| c == "cpuset") else {
            return Ok(());
        };
        let apply = |path: PathBuf| {
            move |e: std::io::Error| CgroupError::Apply {
                path,
                why: e.to_string(),
            }
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mut dir = root.clone();
            for part in self.path.iter().skip(1) {
                let value =
                    std::fs::read_to_string(dir.join(file)).map_err(apply(dir.join(file)))?;
                dir.push(part);
                let own = dir.join(file);
                if std::fs::read_to_string(&own)
                    .map_err(apply(own.clone()))?
                    .trim()
                    .is_empty()
                {
                    std::fs::write(&own, value.trim()).map_err(apply(own.clone()))?;
                }
            }
        }
        Ok(())
    }

    /// Moves `pid` (the init, stopped at its exec) into the cgroup.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        self.manager
            .add_task(nix::unistd::Pid::from_raw(pid))
            .map_err(|e| CgroupError::Join {
                pid,
                path: self.path.clone(),
                why: e.to_string(),
            })
    }

    /// The `cgroup.procs` files a process writes `0` to to join the cgroup
    /// (psdock-exec's child, which cannot be moved from outside before its
    /// exec): one per hierarchy the cgroup has a directory in.
    pub fn procs_files(&self) -> Vec<std::ffi::CString> {
        use std::os::unix::ffi::OsStringExt;
        self.hierarchy
            .dirs(&self.path)
            .into_iter()
            .filter(|d| d.is_dir())
            .filter_map(|d| {
                std::ffi::CString::new(d.join("cgroup.procs").into_os_string().into_vec()).ok()
            })
            .collect()
    }

    pub fn is_v2(&self) -> bool {
        self.hierarchy.is_v2()
    }

    /// Where the memory controller's files are.
    pub fn memory_dir(&self) -> PathBuf {
        self.hierarchy
            .dir("memory", &self.path)
            .unwrap_or_else(|| self.hierarchy.dirs(&self.path).remove(0))
    }

    /// SIGKILLs every process in the cgroup at once: v2's `cgroup.kill`, or
    /// on v1 a frozen cgroup (no fork can slip between the listing and the
    /// kills), each pid killed, then thawed for the kills to land.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        let why = |e: &dyn std::fmt::Display| CgroupError::Kill {
            path: self.path.clone(),
            why: e.to_string(),
        };
        if self.is_v2() {
            let kill = self.memory_dir().join("cgroup.kill");
            if kill.exists() {
                return std::fs::write(&kill, "1").map_err(|e| why(&e));
            }
        }
        use libcgroups::common::FreezerState;
        let frozen = self.manager.freeze(FreezerState::Frozen).is_ok();
        let pids = self.manager.get_all_pids().map_err(|e| why(&e));
        for pid in pids.iter().flatten() {
            let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
        }
        if frozen {
            let _ = self.manager.freeze(FreezerState::Thawed);
        }
        pids.map(|_| ())
    }

    /// Kills what is left in the cgroup and removes it.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.manager.remove().map_err(|e| CgroupError::Remove {
            path: self.path.clone(),
            why: e.to_string(),
        })
    }
}
