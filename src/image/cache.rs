//! The layer cache: every layer unpacked once, in a directory named by the
//! digest of what it was unpacked from, shared by every run that needs it.
//!
//! ```text
//! $PSDOCK_CACHE_DIR (default /var/lib/psdock/layers)/
//!   overlay/sha256/<hex>/       a layer, whiteouts in overlay form
//!   overlay/sha256/<hex>.lock   only while some psdock unpacks <hex>
//!   overlay/tmp/<hex>.<pid>/    an unpack in progress
//!   aufs/...                    the same, whiteouts as the OCI form has them
//! ```
//!
//! A layer directory appears by `rename(2)` of a complete unpack, so one that
//! exists is whole; it is never written again. Two psdocks that need the same
//! new layer take turns on its lock: the second finds it done.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::plugin::Whiteouts;

const DEFAULT_ROOT: &str = "/var/lib/psdock/layers";

#[derive(Debug, thiserror::Error)]
#[error("layer cache {}: {source}", .path.display())]
pub struct CacheError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `PSDOCK_CACHE_DIR` if set, else `/var/lib/psdock/layers`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("PSDOCK_CACHE_DIR")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from);
        // Layer paths end up in mount options, which must not depend on the cwd.
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn form_dir(&self, form: Whiteouts) -> PathBuf {
        self.root.join(match form {
            Whiteouts::Overlay => "overlay",
            Whiteouts::Aufs => "aufs",
        })
    }

    /// Where the layer with this sha256 lives once unpacked.
    pub fn layer_path(&self, form: Whiteouts, hex: &str) -> PathBuf {
        self.form_dir(form).join("sha256").join(hex)
    }

    /// Whether the layer is already there (then using it needs no lock).
    pub fn has(&self, form: Whiteouts, hex: &str) -> bool {
        self.layer_path(form, hex).is_dir()
    }

    /// The layer's directory, unpacked by `fill` into an empty directory first
    /// if no psdock has done it yet. When `fill` fails, the cache is left as
    /// it was.
    pub fn layer<E: From<CacheError>>(
        &self,
        form: Whiteouts,
        hex: &str,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, E> {
        let done = self.layer_path(form, hex);
        if done.is_dir() {
            return Ok(done);
        }
        let form_dir = self.form_dir(form);
        let tmp_dir = form_dir.join("tmp");
        let layers_dir = done.parent().expect("a layer path has a parent");
        for dir in [layers_dir, &tmp_dir] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(at(dir))?;
        }
        let lock_path = done.with_extension("lock");
        let lock = lock(&lock_path)?;
        let result = (|| {
            if done.is_dir() {
                return Ok(done.clone()); // unpacked while we waited
            }
            // We hold the digest's lock: any unpack of it in progress died.
            remove_stale(&tmp_dir, hex).map_err(at(&tmp_dir))?;
            let tmp = tmp_dir.join(format!("{hex}.{}", std::process::id()));
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&tmp)
                .map_err(at(&tmp))?;
            let filled = fill(&tmp).and_then(|()| {
                // The rename publishes the layer: its contents must be on disk first.
                let dir = File::open(&tmp).map_err(at(&tmp))?;
                nix::unistd::syncfs(dir.as_raw_fd()).map_err(|e| at(&tmp)(e.into()))?;
                std::fs::rename(&tmp, &done).map_err(at(&done))?;
                Ok(())
            });
            if filled.is_err() {
                let _ = crate::fsutil::remove_tree(&tmp);
            }
            filled.map(|()| done.clone())
        })();
        // Unlinked while still held: a psdock waiting on this inode notices
        // that it is gone and takes the next one (see `lock`).
        let _ = std::fs::remove_file(&lock_path);
        drop(lock);
        result
    }
}

/// An exclusive flock on `path`, on the file that is at `path` once the lock
/// is held: the holder unlinks it before letting go, so a lock taken on an
/// unlinked file is worth nothing and is taken again.
fn lock(path: &Path) -> Result<Flock<File>, CacheError> {
    loop {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(at(path))?;
        let held =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| at(path)(e.into()))?;
        let ours = held.metadata().map_err(at(path))?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(held),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(at(path)(e)),
        }
    }
}

fn remove_stale(tmp_dir: &Path, hex: &str) -> io::Result<()> {
    let prefix = format!("{hex}.");
    for entry in std::fs::read_dir(tmp_dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(prefix.as_bytes())
        {
            crate::fsutil::remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_layer_is_filled_once_and_published_whole() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path());
        let mut calls = 0;
        for _ in 0..2 {
            let dir = cache
                .layer(Whiteouts::Overlay, HEX, |tmp| {
                    calls += 1;
                    std::fs::write(tmp.join("f"), b"x").map_err(at(tmp))
                })
                .unwrap();
            assert_eq!(dir, root.path().join("overlay/sha256").join(HEX));
        }
        assert_eq!(calls, 1);
        assert_eq!(
            listing(root.path()),
            [
                "overlay",
                "overlay/sha256",
                &format!("overlay/sha256/{HEX}"),
                &format!("overlay/sha256/{HEX}/f"),
                "overlay/tmp"
            ]
        );
    }

    #[test]
    fn a_failed_fill_leaves_the_cache_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path());
        cache
            .layer(Whiteouts::Overlay, HEX, |_| Ok::<(), CacheError>(()))
            .unwrap();
        let before = listing(root.path());
        let other = HEX.replace('0', "f");
        let err = cache
            .layer(Whiteouts::Aufs, &other, |tmp| {
                std::fs::write(tmp.join("half"), b"x").unwrap();
                Err(at(tmp)(io::Error::other("corrupt")))
            })
            .unwrap_err();
        assert_eq!(err.source.to_string(), "corrupt");
        let after: Vec<_> = listing(root.path())
            .into_iter()
            .filter(|p| !p.starts_with("aufs")) // the empty skeleton of the new form
            .collect();
        assert_eq!(before, after);
        assert!(listing(&root.path().join("aufs"))
            .iter()
            .all(|p| p == "sha256" || p == "tmp"));
    }

    #[test]
    fn a_dead_unpackers_leftovers_are_cleared() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::at(root.path());
        let stale = root
            .path()
            .join("overlay/tmp")
            .join(format!("{HEX}.999999"));
        std::fs::create_dir_all(stale.join("deep")).unwrap();
        cache
            .layer(Whiteouts::Overlay, HEX, |_| Ok::<(), CacheError>(()))
            .unwrap();
        assert!(!stale.exists());
    }
}
