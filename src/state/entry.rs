//! psdock's own entry: written before anything is made on disk, completed once
//! the init runs, removed when everything it describes is gone.

use std::path::PathBuf;

use super::record::{Created, Record, VERSION};
use super::store::{self, StateError};
use crate::proc::ProcId;
use crate::rootfs::{self, Rootfs, RootfsError};
use crate::spec::RunSpec;

/// The entry of this psdock's container. It owns the rootfs once one is held:
/// dropping it tears the rootfs down first, and removes the entry only when
/// nothing was left behind, so that whatever was left can still be reclaimed.
pub struct Entry {
    dir: PathBuf,
    record: Record,
    rootfs: Option<Rootfs>,
    /// Removed before the rootfs is torn down, once the container has ended.
    cgroup: Option<crate::cgroup::Cgroup>,
}

impl Entry {
    /// Writes the entry before the rootfs is made, so that a psdock killed at
    /// any later point leaves a record of what it may have made.
    pub fn create(spec: &RunSpec) -> Result<Entry, StateError> {
        let dir = store::dir();
        store::create_dir(&dir)?;
        let mut record = Record {
            version: VERSION,
            id: String::new(),
            psdock: ProcId::current().map_err(StateError::Process)?,
            init: None,
            image: spec.image.clone(),
            rootfs: spec.rootfs.clone(),
            command: spec.command.clone(),
            caps: spec.caps,
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            created: Created {
                mount: spec.rootfs.clone(),
                // Settled by `prepare`; until then, what it is about to do.
                rootfs_dir: std::fs::symlink_metadata(&spec.rootfs).is_err(),
                sibling: rootfs::sibling_of(&spec.rootfs),
                upper: spec.upper,
                cgroup: None,
            },
            seccomp: spec.seccomp.choice.clone(),
            net: None,
            health: None,
            restarts: 0,
            last_exit: None,
        };
        // 28 random bits: a clash is rare, and the exclusive rename settles it.
        loop {
            record.id = new_id().map_err(StateError::Process)?;
            match store::write(&dir, &record, true) {
                Ok(()) => break,
                Err(StateError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Entry {
            dir,
            record,
            rootfs: None,
            cgroup: None,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Makes the rootfs with `make` and takes charge of it. If a psdock that
    /// died left this ROOTFS behind, what its entry recorded is reclaimed and
    /// `make` tried once more.
    pub fn prepare(
        &mut self,
        make: impl Fn() -> Result<Rootfs, RootfsError>,
    ) -> Result<(), crate::error::Error> {
        let rootfs = match make() {
            Err(RootfsError::Stale { .. }) if self.reclaim_stale()? => make()?,
            made => made?,
        };
        self.record.created.rootfs_dir = rootfs.created_target();
        self.rootfs = Some(rootfs);
        Ok(())
    }

    /// Reclaims the stale entries recorded for this entry's ROOTFS; whether
    /// there was any.
    fn reclaim_stale(&self) -> Result<bool, StateError> {
        let mut any = false;
        for listed in store::list(&self.dir)? {
            let store::Listed::Record(r) = listed else {
                continue;
            };
            if r.id == self.record.id || r.rootfs != self.record.rootfs {
                continue;
            }
            if store::status(&self.dir, &r) == Some(super::Status::Stale) {
                super::reclaim(&self.dir, &r).map_err(|why| StateError::Reclaim {
                    id: r.id.clone(),
                    rootfs: r.rootfs.clone(),
                    why,
                })?;
                any = true;
            }
        }
        Ok(any)
    }

    /// Records the init, now that it runs.
    pub fn started(&mut self, init: nix::unistd::Pid) -> Result<(), StateError> {
        // Our own child, not yet reaped: its pid cannot have been reused.
        let init = ProcId::of(init.as_raw())
            .map_err(StateError::Process)?
            .ok_or_else(|| StateError::Process(std::io::Error::from_raw_os_error(libc::ESRCH)))?;
        self.record.init = Some(init);
        store::write(&self.dir, &self.record, false)
    }

    /// The container's network, written with the init by [`Self::started`]
    /// (no write of its own: start-up stays one write shorter). Until then
    /// a killed psdock's address lease is found by the lease itself.
    pub fn network(&mut self, info: crate::plugin::NetInfo) {
        self.record.net = Some(info);
    }

    /// Records the health state (the whole record is rewritten, as always).
    pub fn set_health(&mut self, health: crate::health::HealthRecord) -> Result<(), StateError> {
        self.record.health = Some(Box::new(health));
        store::write(&self.dir, &self.record, false)
    }

    /// Makes the container's cgroup with `limits`, recorded before it is made.
    pub fn make_cgroup(
        &mut self,
        limits: &crate::spec::Limits,
    ) -> Result<&crate::cgroup::Cgroup, crate::error::Error> {
        let planned = crate::cgroup::Planned::new(&self.record.id, limits)?;
        self.record.created.cgroup = Some(planned.path().to_owned());
        store::write(&self.dir, &self.record, false)?;
        Ok(self.cgroup.insert(planned.create(limits)?))
    }

    pub fn cgroup(&self) -> Option<&crate::cgroup::Cgroup> {
        self.cgroup.as_ref()
    }

    /// An attempt ended and another follows: its init is gone, its exit code
    /// is recorded (the entry reads `restarting` until the next one runs).
    pub fn ended(&mut self, exit_code: i32) -> Result<(), StateError> {
        self.record.init = None;
        self.record.last_exit = Some(exit_code);
        // The ended attempt's health is not the next one's: none between them.
        self.record.health = None;
        store::write(&self.dir, &self.record, false)
    }

    /// Renews the rootfs for the next attempt with `renew`, and counts it: the
    /// count is written with the next init (`started`).
    pub fn restart(
        &mut self,
        renew: impl FnOnce(&mut Rootfs) -> Result<(), RootfsError>,
    ) -> Result<(), RootfsError> {
        self.record.restarts += 1;
        match self.rootfs.as_mut() {
            Some(rootfs) => renew(rootfs),
            None => Ok(()),
        }
    }

    /// The exit code of the last attempt that ended before this one.
    pub fn last_exit(&self) -> Option<i32> {
        self.record.last_exit
    }

    pub fn path(&self) -> PathBuf {
        store::entry_path(&self.dir, &self.record.id)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut clean = true;
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(e) = cgroup.remove() {
                eprintln!("psdock: {e}");
                clean = false;
            }
        }
        if let Some(rootfs) = self.rootfs.take() {
            clean &= rootfs.close();
        }
        if !clean {
            return;
        }
        let path = self.path();
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("psdock: cannot remove {}: {e}", path.display());
            }
        }
    }
}

fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 4];
    // SAFETY: the kernel fills a buffer of the given length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(format!("psdock_{:07x}", u32::from_ne_bytes(bytes) >> 4))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_seven_hex_digits() {
        for _ in 0..100 {
            let id = super::new_id().unwrap();
            assert!(super::store::is_id(&id), "{id}");
        }
    }
}
