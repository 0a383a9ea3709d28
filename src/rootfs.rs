//! The rootfs of one run: the hidden sibling directory that holds the lock and
//! the driver's upper and work directories, the mount at ROOTFS, and its
//! teardown. Drivers (`drivers/rootfs/`) only choose the mount options.
//!
//! For ROOTFS `/srv/web` the sibling is `/srv/.web.psdock/` with `lock`,
//! `upper/` and `work/`: never inside ROOTFS, so never visible in the container.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::plugin::{RootfsDriver, RootfsLayout};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("-rootfs {}: in use by another psdock", .0.display())]
    InUse(PathBuf),
    #[error("-rootfs {}: left behind by a psdock that died, with no state entry to reclaim it from ({} still exists); remove it by hand to reuse the rootfs", .rootfs.display(), .sibling.display())]
    Stale { rootfs: PathBuf, sibling: PathBuf },
    #[error("-rootfs {}: exists and is not empty", .0.display())]
    NotEmpty(PathBuf),
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot stack the layers: {0}")]
    Options(String),
    #[error("cannot mount {fstype} at {}: {source}", .path.display())]
    Mount {
        fstype: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
}

/// A mounted rootfs. Dropping it unmounts and removes what this run created, in
/// reverse order; nothing else is touched.
#[derive(Debug)]
pub struct Rootfs {
    target: PathBuf,
    sibling: PathBuf,
    /// ROOTFS was made by this run (else it was an empty directory given to us:
    /// removed at the end of a run that mounted on it, but left by a reclaim,
    /// which removes only what the state entry says psdock made).
    created_target: bool,
    mounted: bool,
    closed: bool,
    /// Held for the whole run: the lock that keeps other psdocks out.
    _lock: Flock<File>,
}

/// The hidden sibling of a rootfs path.
pub fn sibling_of(rootfs: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(rootfs.file_name().unwrap_or_default());
    name.push(".psdock");
    rootfs.with_file_name(name)
}

/// Creates the sibling (the lock), ROOTFS when absent, and mounts the layers.
/// `rootfs` must be absolute with a canonical parent (see `RunSpec`).
pub fn prepare(
    driver: &dyn RootfsDriver,
    lower: Vec<PathBuf>,
    rootfs: &Path,
) -> Result<Rootfs, RootfsError> {
    let sibling = sibling_of(rootfs);
    let create = |path: &Path| {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|source| RootfsError::Create {
                path: path.to_owned(),
                source,
            })
    };
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
    // From here on, the guard owns the cleanup of whatever exists.
    let lock_path = sibling.join("lock");
    let lock = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path);
    let lock = match lock {
        Ok(f) => f,
        Err(source) => {
            let _ = std::fs::remove_dir(&sibling);
            return Err(RootfsError::Create {
                path: lock_path,
                source,
            });
        }
    };
    // The lock file stays empty: a file with data holds a disk block, and
    // freeing it at the end can cost a synchronous discard (0.1 ms on the
    // benchmark's disk). Who holds it is in the state entry.
    let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        RootfsError::Create {
            path: lock_path.clone(),
            source: e.into(),
        }
    })?;
    let mut guard = Rootfs {
        target: rootfs.to_owned(),
        sibling: sibling.clone(),
        created_target: false,
        mounted: false,
        closed: false,
        _lock: lock,
    };
    let upper = sibling.join("upper");
    let work = sibling.join("work");
    create(&upper)?;
    create(&work)?;
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
    let layout = RootfsLayout {
        lower,
        upper,
        work,
        target: rootfs.to_owned(),
    };
    let m = driver.mount_data(&layout).map_err(RootfsError::Options)?;
    mount(
        Some(m.fstype),
        rootfs,
        Some(m.fstype),
        MsFlags::empty(),
        Some(m.data.as_c_str()),
    )
    .map_err(|source| RootfsError::Mount {
        fstype: m.fstype,
        path: rootfs.to_owned(),
        source,
    })?;
    guard.mounted = true;
    Ok(guard)
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
        // Another psdock holds it, or is between making the directory and the lock.
        _ => RootfsError::InUse(rootfs.to_owned()),
    }
}

/// A sibling's lock, as a process other than its psdock finds it.
#[derive(Debug)]
pub enum SiblingLock {
    /// There is no sibling.
    NoSibling,
    /// The sibling has no lock file: a psdock is between making the directory
    /// and the lock, or died right there.
    NoLock,
    /// A live psdock holds it.
    Held,
    /// Nobody held it; now the caller does, until it drops this.
    Free(Flock<File>),
}

/// Tries to take a sibling's lock without waiting. The sibling and the lock are
/// opened without following symlinks.
pub fn lock_sibling(sibling: &Path) -> std::io::Result<SiblingLock> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = match nix::fcntl::open(
        sibling,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(nix::errno::Errno::ENOENT) => return Ok(SiblingLock::NoSibling),
        Err(e) => return Err(e.into()),
    };
    let lock = match nix::fcntl::openat(
        Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
        "lock",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(nix::errno::Errno::ENOENT) => return Ok(SiblingLock::NoLock),
        Err(e) => return Err(e.into()),
    };
    match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(SiblingLock::Free(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(SiblingLock::Held),
        Err((_, e)) => Err(e.into()),
    }
}

impl Rootfs {
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// The hidden sibling holding the lock, upper and work directories.
    pub fn sibling(&self) -> &Path {
        &self.sibling
    }

    /// Whether ROOTFS itself was made by this run.
    pub fn created_target(&self) -> bool {
        self.created_target
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
            // Detach: the container is gone, but a lazy reference (an open file
            // in a dying process) must not keep us from cleaning up.
            if let Err(e) = umount2(
                &self.target,
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            ) {
                eprintln!("psdock: cannot unmount {}: {e}", self.target.display());
                return false; // leave everything for a later reclaim rather than delete through a mount
            }
        }
        let mut clean = true;
        // ROOTFS is ephemeral (issue 2, and the seed's "rootfs are destroyed"):
        // removed when this run made it or mounted on it, having found it empty.
        // rmdir, not a recursive removal: it refuses a mount point or anything
        // still holding files.
        if self.created_target || self.mounted {
            if let Err(e) = std::fs::remove_dir(&self.target) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("psdock: cannot remove {}: {e}", self.target.display());
                    clean = false;
                }
            }
        }
        if let Err(e) = crate::fsutil::remove_tree(&self.sibling) {
            eprintln!("psdock: cannot remove {}: {e}", self.sibling.display());
            clean = false;
        }
        clean
    }
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
    fn the_sibling_is_hidden_next_to_the_rootfs() {
        assert_eq!(
            sibling_of(Path::new("/srv/web")),
            Path::new("/srv/.web.psdock")
        );
    }
}
