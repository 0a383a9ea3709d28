//! The rootfs of one run: the hidden sibling that holds the overlay's upper
//! and work directories, the mount at ROOTFS, and its teardown. Drivers
//! (`drivers/rootfs/`) only choose the mount options.
//!
//! For ROOTFS `/srv/web` the sibling is `/srv/.web.psdock/`: never inside
//! ROOTFS, so never visible in the container. A flock on it is the lock that
//! keeps a second psdock off the same ROOTFS; it is root's alone (0700), where
//! the upper directory takes the image's owner and mode.
//!
//! Where the container's writes go is [`Upper`]'s choice. By default a tmpfs is
//! mounted on the sibling and holds `upper/` and `work/`: the layer is thrown
//! away at the end of the run, so it never touches the disk. With
//! [`Upper::Disk`] the sibling itself is the work directory and the upper
//! layer is `/srv/.web.psdock-upper/layer/`, on the file system that holds
//! ROOTFS. Each directory costs a disk block to create and to free, which is
//! why there is no lock file: on a disk mounted with `discard` every freed
//! block is a synchronous TRIM. The one directory around the layer is what
//! keeps host users out of it: the layer takes the image's mode (0755, as the
//! container's `/`), and what the container writes there (a setuid root copy
//! of a shell, a device node) sits on a host file system that honours both;
//! `-upper` is root's alone (0700), as the sibling and its tmpfs are.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::plugin::{RootfsDriver, RootfsLayout};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("-rootfs {}: in use by another psdock", .0.display())]
    InUse(PathBuf),
    #[error("-rootfs {}: left behind by a psdock that died, with no state entry to reclaim it from ({} still exists); unmount and remove it by hand to reuse the rootfs", .rootfs.display(), .sibling.display())]
    Stale { rootfs: PathBuf, sibling: PathBuf },
    #[error("-rootfs {}: exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {}: {source}", .path.display())]
    Lock { path: PathBuf, source: Errno },
    #[error("cannot stack the layers: {0}")]
    Options(String),
    #[error("cannot mount {fstype} at {}: {source}", .path.display())]
    Mount {
        fstype: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("cannot unmount {}: {source}", .path.display())]
    Unmount { path: PathBuf, source: nix::Error },
    #[error("cannot remove {}: {source}", .path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the overlay's upper and work directories live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upper {
    /// In a tmpfs mounted on the sibling, in memory (and swap): charged to the
    /// memory of the process that writes, bounded by tmpfs's default size
    /// (half the RAM), gone with the run.
    Tmpfs,
    /// On the file system that holds ROOTFS, beside the sibling.
    Disk,
}

/// A mounted rootfs. Dropping it unmounts and removes what this run created, in
/// reverse order; nothing else is touched.
#[derive(Debug)]
pub struct Rootfs {
    target: PathBuf,
    sibling: PathBuf,
    /// ROOTFS was made by this run; else it was an empty directory given to
    /// us, left as it was found, as a reclaim leaves it.
    created_target: bool,
    /// The upper directory beside the sibling was made by this run.
    created_upper: bool,
    /// A tmpfs is mounted on the sibling ([`Upper::Tmpfs`]).
    tmpfs: bool,
    mounted: bool,
    closed: bool,
    /// Held for the whole run: the lock that keeps other psdocks out.
    _lock: Flock<File>,
}

/// The hidden sibling of a rootfs path: the lock, and the home of the upper
/// and work directories.
pub fn sibling_of(rootfs: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(rootfs.file_name().unwrap_or_default());
    name.push(".psdock");
    rootfs.with_file_name(name)
}

/// The directory that holds the upper layer under [`Upper::Disk`]: made
/// after the sibling is locked and removed before it, so it never exists
/// without it.
pub fn upper_of(sibling: &Path) -> PathBuf {
    let mut name = sibling.as_os_str().to_owned();
    name.push("-upper");
    PathBuf::from(name)
}

/// The overlay's upper and work directories for a sibling.
pub fn upper_and_work(sibling: &Path, upper: Upper) -> (PathBuf, PathBuf) {
    match upper {
        Upper::Tmpfs => (sibling.join("upper"), sibling.join("work")),
        Upper::Disk => (upper_of(sibling).join("layer"), sibling.to_owned()),
    }
}

/// Creates and locks the sibling, then the upper and work directories and
/// ROOTFS when absent, and mounts the layers. `rootfs` must be absolute with a
/// canonical parent (see `RunSpec`).
pub fn prepare(
    driver: &dyn RootfsDriver,
    lower: Vec<PathBuf>,
    rootfs: &Path,
    upper_kind: Upper,
) -> Result<Rootfs, RootfsError> {
    let sibling = sibling_of(rootfs);
    let (upper, work) = upper_and_work(&sibling, upper_kind);
    if let Err(e) = create(&sibling) {
        return Err(match e {
            RootfsError::Create { source, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                busy_or_stale(rootfs, &sibling)
            }
            e => e,
        });
    }
    let tmpfs = upper_kind == Upper::Tmpfs;
    if tmpfs {
        // Other psdocks and reclaims open the sibling by its path, which then
        // leads into the tmpfs: that is what gets locked, once it is there.
        // Named "psdock" for whoever reads `df` or findmnt.
        if let Err(source) = mount(
            Some("psdock"),
            &sibling,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0700"),
        ) {
            let _ = std::fs::remove_dir(&sibling);
            return Err(RootfsError::Mount {
                fstype: "tmpfs",
                path: sibling,
                source,
            });
        }
    }
    let lock = crate::fsutil::open_dir(&sibling).and_then(|dir| {
        Flock::lock(File::from(dir), FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e)
    });
    let lock = match lock {
        Ok(lock) => lock,
        Err(source) => {
            if !tmpfs || detach(&sibling).is_ok() {
                let _ = std::fs::remove_dir(&sibling);
            }
            return Err(RootfsError::Lock {
                path: sibling,
                source,
            });
        }
    };
    // From here on, the guard owns the cleanup of whatever exists.
    let mut guard = Rootfs {
        target: rootfs.to_owned(),
        sibling: sibling.clone(),
        created_target: false,
        created_upper: false,
        tmpfs,
        mounted: false,
        closed: false,
        _lock: lock,
    };
    // On disk, an upper directory without its sibling is not one psdock left
    // (see `upper_of`): refused as it is, not removed.
    if !tmpfs {
        create(&upper_of(&sibling))?;
        guard.created_upper = true;
    }
    create(&upper)?;
    if tmpfs {
        create(&work)?;
    }
    // The merged root takes its mode and owner from the upper directory: give
    // it the image's, or a non-root user could not even enter `/`.
    if let Some(top) = lower.first() {
        copy_owner_and_mode(top, &upper)?;
    }
    match std::fs::DirBuilder::new().mode(0o755).create(rootfs) {
        Ok(()) => guard.created_target = true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Checked empty by RunSpec; checked again now that we hold the lock.
            let empty = std::fs::read_dir(rootfs)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(RootfsError::NotEmpty(rootfs.to_owned()));
            }
        }
        Err(source) => {
            return Err(RootfsError::Create {
                path: rootfs.to_owned(),
                source,
            })
        }
    }
    mount_layers(driver, lower, upper, work, rootfs)?;
    guard.mounted = true;
    Ok(guard)
}

fn mount_layers(
    driver: &dyn RootfsDriver,
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    rootfs: &Path,
) -> Result<(), RootfsError> {
    let layout = RootfsLayout {
        lower,
        upper,
        work,
        target: rootfs.to_owned(),
    };
    let m = driver.mount_data(&layout).map_err(RootfsError::Options)?;
    // The host sees what the container writes through ROOTFS: a setuid copy
    // of a shell made by container root must not make any host user root, nor
    // a device node it makes open a host device. The container's own copy of
    // this mount clears nosuid again (`container::init`).
    mount(
        Some(m.fstype),
        rootfs,
        Some(m.fstype),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(m.data.as_c_str()),
    )
    .map_err(|source| RootfsError::Mount {
        fstype: m.fstype,
        path: rootfs.to_owned(),
        source,
    })
}

/// A directory only root may enter.
fn create(path: &Path) -> Result<(), RootfsError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|source| RootfsError::Create {
            path: path.to_owned(),
            source,
        })
}

fn copy_owner_and_mode(from: &Path, to: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let err = |source| RootfsError::Create {
        path: to.to_owned(),
        source,
    };
    let meta = std::fs::metadata(from).map_err(err)?;
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid())).map_err(err)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(err)
}

fn busy_or_stale(rootfs: &Path, sibling: &Path) -> RootfsError {
    match lock_sibling(sibling) {
        Ok(SiblingLock::Free(_)) => RootfsError::Stale {
            rootfs: rootfs.to_owned(),
            sibling: sibling.to_owned(),
        },
        // Another psdock holds it (or has just made it and is about to: then
        // this reads as stale, a wrong reason for the same refusal).
        _ => RootfsError::InUse(rootfs.to_owned()),
    }
}

/// A sibling's lock, as a process other than its psdock finds it.
#[derive(Debug)]
pub enum SiblingLock {
    /// There is no sibling.
    NoSibling,
    /// A live psdock holds it.
    Held,
    /// Nobody held it; now the caller does, until it drops this.
    Free(Flock<File>),
}

/// Tries to take a sibling's lock without waiting.
pub fn lock_sibling(sibling: &Path) -> std::io::Result<SiblingLock> {
    let dir = match crate::fsutil::open_dir(sibling) {
        Ok(dir) => File::from(dir),
        Err(Errno::ENOENT) => return Ok(SiblingLock::NoSibling),
        Err(e) => return Err(e.into()),
    };
    match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(SiblingLock::Free(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(SiblingLock::Held),
        Err((_, e)) => Err(e.into()),
    }
}

impl Rootfs {
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// The hidden sibling: the lock, and the home of the upper and work directories.
    pub fn sibling(&self) -> &Path {
        &self.sibling
    }

    /// Whether ROOTFS itself was made by this run.
    pub fn created_target(&self) -> bool {
        self.created_target
    }

    /// A fresh copy of the layers at the same ROOTFS, for a restart: the
    /// overlay is unmounted, what the last container wrote is removed, and
    /// the layers are mounted again on empty upper and work directories. The
    /// sibling and its lock stay, so that no other psdock can take the
    /// ROOTFS in between, and the state entry stays true throughout.
    pub fn renew(
        &mut self,
        driver: &dyn RootfsDriver,
        lower: Vec<PathBuf>,
    ) -> Result<(), RootfsError> {
        if self.mounted {
            detach(&self.target).map_err(|source| RootfsError::Unmount {
                path: self.target.clone(),
                source,
            })?;
            self.mounted = false;
        }
        let kind = if self.tmpfs {
            Upper::Tmpfs
        } else {
            Upper::Disk
        };
        let (upper, work) = upper_and_work(&self.sibling, kind);
        let remove = |path: &Path| match crate::fsutil::remove_tree(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RootfsError::Remove {
                path: path.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        };
        // Fresh directories, not emptied ones: a lingering reference to the
        // old overlay keeps its own, and the new one is not refused as in use.
        remove(&upper)?;
        if self.tmpfs {
            remove(&work)?;
        } else {
            // The sibling is the work directory: overlay's own inside it go.
            let entries = std::fs::read_dir(&work).map_err(|source| RootfsError::Remove {
                path: work.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                remove(&entry.path())?;
            }
        }
        create(&upper)?;
        if self.tmpfs {
            create(&work)?;
        }
        if let Some(top) = lower.first() {
            copy_owner_and_mode(top, &upper)?;
        }
        mount_layers(driver, lower, upper, work, &self.target)?;
        self.mounted = true;
        Ok(())
    }

    /// Unmounts and removes what this run created, as dropping does; false when
    /// something had to be left behind (for a later reclaim).
    pub fn close(mut self) -> bool {
        self.teardown()
    }

    fn teardown(&mut self) -> bool {
        if std::mem::replace(&mut self.closed, true) {
            return true;
        }
        if self.mounted {
            if let Err(e) = detach(&self.target) {
                eprintln!("psdock: cannot unmount {}: {e}", self.target.display());
                return false; // leave everything for a later reclaim rather than delete through a mount
            }
        }
        let mut clean = true;
        // What psdock made goes; an empty directory the user gave is theirs
        // (a mount point of their own, an owner or mode they chose) and stays,
        // as the state entry says and a reclaim does. rmdir, not a recursive
        // removal: it refuses a mount point or anything still holding files.
        if self.created_target {
            if let Err(e) = std::fs::remove_dir(&self.target) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("psdock: cannot remove {}: {e}", self.target.display());
                    clean = false;
                }
            }
        }
        // The upper and work directories go with their tmpfs, the sibling
        // only after it: left, it still tells a later reclaim to look.
        if self.tmpfs {
            if let Err(e) = detach(&self.sibling) {
                eprintln!("psdock: cannot unmount {}: {e}", self.sibling.display());
                return false;
            }
        }
        if let Err((dir, e)) = remove_siblings(&self.sibling, self.created_upper) {
            eprintln!("psdock: cannot remove {}: {e}", dir.display());
            return false;
        }
        clean
    }
}

/// Unmounts what psdock mounted at `path`, the overlay or the tmpfs under it.
/// Detached: the container is gone, but a lazy reference (an open file in a
/// dying process, the lock on the tmpfs) must not keep us from cleaning up.
pub fn detach(path: &Path) -> nix::Result<()> {
    umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
}

/// Removes the upper directory beside the sibling (when `with_upper`: it is
/// ours, under [`Upper::Disk`]) and then the sibling, in that order: left
/// without the upper directory, the sibling still tells a later reclaim that
/// there is something to remove. Used by a run's teardown and by a reclaim.
pub fn remove_siblings(sibling: &Path, with_upper: bool) -> Result<(), (PathBuf, std::io::Error)> {
    let upper = with_upper.then(|| upper_of(sibling));
    for dir in upper.iter().map(PathBuf::as_path).chain([sibling]) {
        crate::fsutil::remove_tree(dir).map_err(|e| (dir.to_owned(), e))?;
    }
    Ok(())
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_siblings_are_hidden_next_to_the_rootfs() {
        let sibling = sibling_of(Path::new("/srv/web"));
        assert_eq!(sibling, Path::new("/srv/.web.psdock"));
        assert_eq!(upper_of(&sibling), Path::new("/srv/.web.psdock-upper"));
        assert_eq!(
            upper_and_work(&sibling, Upper::Tmpfs),
            (
                "/srv/.web.psdock/upper".into(),
                "/srv/.web.psdock/work".into()
            )
        );
        assert_eq!(
            upper_and_work(&sibling, Upper::Disk),
            ("/srv/.web.psdock-upper/layer".into(), sibling)
        );
    }
}
