//! Removing a directory tree whatever its depth, with a bounded number of
//! descriptors: a container can nest directories deeper than psdock may hold
//! descriptors open (1500 levels at the usual limit of 1024), and the tree it
//! leaves in a disk upper directory must still go.
//!
//! std's `remove_dir_all` (and the crates built like it, cap-std's, the
//! `remove_dir_all` crate's) recurse with one open directory per level, and
//! none of them refuses to cross a mount point. Here only the directory being
//! emptied is open: the way down is kept as names, and the way back up is
//! `..`, checked against the device and inode recorded on the way down, so a
//! directory moved meanwhile stops the removal instead of leading it
//! elsewhere.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::{open_dir, statx_mount};

/// How often a directory found not empty on the way up (something was made in
/// it meanwhile) is emptied again before the removal gives up.
const RETRIES: u32 = 3;

/// Removes `dir` and everything below it without following symlinks and without
/// descending into anything on another mount (a mount point is left alone, and
/// so is whatever is mounted there).
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(dir);
    }
    let fd = open_dir(dir)?;
    let (_, mount) = statx_mount(fd.as_raw_fd(), c"")?;
    empty(fd, mount)?;
    std::fs::remove_dir(dir)
}

/// A directory on the way down from the top.
struct Level {
    /// Its name in its parent (empty for the top, which the caller removes).
    name: CString,
    /// The device and inode of its parent, to check `..` against.
    parent: (u64, u64),
    /// Its subdirectories still to remove.
    pending: Vec<CString>,
    retries: u32,
}

/// Empties the directory `top`, on mount `mount`, holding at most three
/// descriptors at any time.
fn empty(top: OwnedFd, mount: u64) -> io::Result<()> {
    let mut levels = vec![Level {
        name: CString::default(),
        parent: (0, 0),
        pending: scan(top.as_raw_fd(), mount)?,
        retries: 0,
    }];
    let mut cur = top;
    while let Some(level) = levels.last_mut() {
        if let Some(name) = level.pending.pop() {
            let Some(child) = open_subdir(cur.as_raw_fd(), &name, mount)? else {
                continue; // gone meanwhile
            };
            let pending = scan(child.as_raw_fd(), mount)?;
            levels.push(Level {
                name,
                parent: identity(cur.as_raw_fd())?,
                pending,
                retries: 0,
            });
            cur = child;
            continue;
        }
        if levels.len() == 1 {
            return Ok(());
        }
        let level = levels.last_mut().expect("a level below the top");
        let parent = reopen(cur.as_raw_fd(), c"..")?;
        if identity(parent.as_raw_fd())? != level.parent {
            return Err(io::Error::other(format!(
                "{} was moved while being removed",
                level.name.to_string_lossy()
            )));
        }
        match unlinkat(
            Some(parent.as_raw_fd()),
            level.name.as_c_str(),
            UnlinkatFlags::RemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {
                levels.pop();
                cur = parent;
            }
            Err(Errno::ENOTEMPTY) if level.retries < RETRIES => {
                level.retries += 1;
                level.pending = scan(cur.as_raw_fd(), mount)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes every entry of `dir` but its subdirectories, and returns their names.
fn scan(dir: RawFd, mount: u64) -> io::Result<Vec<CString>> {
    // A descriptor of its own: the directory stream takes it over.
    let mut entries = nix::dir::Dir::openat(
        Some(dir),
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut subdirs = Vec::new();
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let (kind, id) = match statx_mount(dir, name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            r => r?,
        };
        if id != mount {
            return Err(crossing(name));
        }
        if kind == libc::S_IFDIR {
            subdirs.push(name.to_owned());
            continue;
        }
        match unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(subdirs)
}

/// The subdirectory `name` of `dir`, if it is still one and on `mount`.
fn open_subdir(dir: RawFd, name: &CStr, mount: u64) -> io::Result<Option<OwnedFd>> {
    let child = match reopen_nofollow(dir, name) {
        Err(Errno::ENOENT) => return Ok(None),
        r => r?,
    };
    // Checked again on the descriptor: the name may now be something else.
    let (_, id) = statx_mount(child.as_raw_fd(), c"")?;
    if id != mount {
        return Err(crossing(name));
    }
    Ok(Some(child))
}

fn crossing(name: &CStr) -> io::Error {
    io::Error::other(format!(
        "refusing to cross a mount point at {}",
        Path::new(std::ffi::OsStr::from_bytes(name.to_bytes())).display()
    ))
}

fn reopen(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    Ok(reopen_nofollow(dir, name)?)
}

fn reopen_nofollow(dir: RawFd, name: &CStr) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn identity(fd: RawFd) -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_tree_with_files_at_every_level_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("top");
        std::fs::create_dir(&top).unwrap();
        let mut fd = open_dir(&top).unwrap();
        for _ in 0..300 {
            for name in [c"d", c"e"] {
                nix::sys::stat::mkdirat(Some(fd.as_raw_fd()), name, Mode::S_IRWXU).unwrap();
            }
            let f = openat(
                Some(fd.as_raw_fd()),
                c"f",
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::S_IRWXU,
            )
            .unwrap();
            nix::unistd::close(f).unwrap();
            fd = reopen(fd.as_raw_fd(), c"d").unwrap();
        }
        drop(fd);
        remove_tree(&top).unwrap();
        assert!(!top.exists());
    }
}
