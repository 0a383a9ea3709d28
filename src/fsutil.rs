//! File-system helpers that must not be fooled by symlinks or cross mount points.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

mod remove;
pub use remove::remove_tree;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Nothing,
    Dir,
    File,
}

/// Opens `path` (taken as relative to `root`) with `O_PATH`, resolving every
/// symlink as if `root` were `/`, so that nothing can lead outside `root`
/// (`openat2` with `RESOLVE_IN_ROOT`). Missing components are created as
/// directories, and the last one as `last`, each created relative to the
/// already-resolved parent.
pub fn open_in_root(root: &impl AsFd, path: &Path, last: Create) -> io::Result<OwnedFd> {
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path must not contain `..`",
        ));
    }
    // Usually the whole path is there: one walk in the kernel. Only what is
    // missing is walked again a component at a time, to create it.
    if !parts.is_empty() {
        match openat2_in_root(root, path, libc::O_PATH) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && last != Create::Nothing => {}
            r => return r,
        }
    }
    let mut current = openat2_in_root(root, Path::new("."), libc::O_PATH)?;
    let mut so_far = std::path::PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        so_far.push(part);
        match openat2_in_root(root, &so_far, libc::O_PATH) {
            Ok(fd) => current = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && last != Create::Nothing => {
                let is_last = i + 1 == parts.len();
                let name = CString::new(part.as_bytes())?;
                if is_last && last == Create::File {
                    let fd = openat(
                        Some(current.as_raw_fd()),
                        name.as_c_str(),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    )?;
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                } else {
                    mkdirat(
                        Some(current.as_raw_fd()),
                        name.as_c_str(),
                        Mode::from_bits_truncate(0o755),
                    )?;
                }
                current = openat2_in_root(root, &so_far, libc::O_PATH)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(current)
}

/// How often [`openat2`] tries when the kernel answers EAGAIN.
const OPENAT2_TRIES: u32 = 1000;

fn openat2_in_root(root: &impl AsFd, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    openat2(
        root,
        path,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// Opens the file at `path` below `dir` to read it, following no symlink on the
/// way (`ELOOP`) and never leaving `dir` (`EXDEV`), without blocking on a FIFO
/// or taking a terminal; anything but a regular file is refused
/// (`InvalidInput`, naming what it is) before a byte is read. Returns the file
/// and the size it has now.
pub fn open_regular_beneath(dir: &impl AsFd, path: &Path) -> io::Result<(std::fs::File, u64)> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let file = std::fs::File::from(openat2(dir, path, flags, resolve)?);
    let size = regular_size(&file)?;
    Ok((file, size))
}

/// The size of `file`, which must be a regular file: a FIFO, a device or a
/// socket would feed or hold a reader without end.
pub fn regular_size(file: &std::fs::File) -> io::Result<u64> {
    use std::os::unix::fs::FileTypeExt;
    let meta = file.metadata()?;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(meta.len());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file"),
    ))
}

/// Opens `path` below `root` with `O_PATH`, failing with `EXDEV` when resolving
/// it (`..`, an absolute symlink, a relative one that climbs out) would leave
/// `root` (`openat2` with `RESOLVE_BENEATH`).
pub fn open_beneath(root: &impl AsFd, path: &Path) -> io::Result<OwnedFd> {
    openat2(
        root,
        path,
        libc::O_PATH,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    )
}

fn openat2(root: &impl AsFd, path: &Path, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: open_how is plain data; all-zero is its "no options" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // EAGAIN: a rename or mount anywhere on the system raced a `..` of the walk,
    // and the kernel asks for a retry. Bounded, so a busy host cannot hold us.
    let mut tries = 0;
    loop {
        // SAFETY: `how` and `c` outlive the call; the result is a new descriptor we own.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_fd().as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EAGAIN) || tries == OPENAT2_TRIES {
            return Err(e);
        }
    }
}

/// `path` with every symlink resolved, as `std::fs::canonicalize` has it, from
/// the kernel's name for the opened path: realpath(3) instead reads the link of
/// every prefix of the path, a full lookup each. Without /proc, the slow way.
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(name) if name.is_absolute() => Ok(name),
        _ => path.canonicalize(),
    }
}

/// Opens a regular file inside `root` to read it, without following symlinks
/// out of it. Anything else is refused before a read: a FIFO or a device node
/// in an image could otherwise hold psdock up or feed it without end. A file
/// larger than `max` bytes is refused with `FileTooLarge`: the image or the
/// container chose its size. What is read is bounded by `max` too, should the
/// file grow.
pub fn open_in_root_regular(
    root: &Path,
    path: &Path,
    max: u64,
) -> io::Result<std::io::Take<std::fs::File>> {
    use std::io::Read;
    let dir = std::fs::File::open(root)?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let file = std::fs::File::from(openat2_in_root(&dir, path, flags)?);
    if regular_size(&file)? > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(file.take(max))
}

/// A directory, opened to read it or to hold a flock on, without following a
/// symlink at its last component.
pub fn open_dir(path: &Path) -> Result<OwnedFd, nix::Error> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `open` just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The type and mount id of `name` in `dir` (the directory itself when `name`
/// is empty). The mount id, unlike the device number, also tells a bind mount
/// from the same file system.
fn statx_mount(dir: RawFd, name: &std::ffi::CStr) -> io::Result<(u32, u64)> {
    // SAFETY: zeroed statx is a valid buffer for the kernel to fill.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW
        | if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    let mask = libc::STATX_TYPE | libc::STATX_MNT_ID;
    if unsafe { libc::statx(dir, name.as_ptr(), flags, mask, &mut stx) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(io::Error::other("the kernel does not report mount ids"));
    }
    Ok((u32::from(stx.stx_mode) & libc::S_IFMT, stx.stx_mnt_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink("/", root.path().join("up")).unwrap();
        symlink("../../../..", root.path().join("dots")).unwrap();
        symlink(outside.path(), root.path().join("abs")).unwrap();
        let dir = std::fs::File::open(root.path()).unwrap();
        for link in ["up", "dots"] {
            let fd = open_in_root(&dir, &Path::new(link).join("made/here"), Create::Dir).unwrap();
            let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
            assert!(
                real.starts_with(root.path()),
                "{link} escaped to {}",
                real.display()
            );
        }
        // An absolute link resolves inside the root, where its target is missing:
        // refused rather than created through the link.
        assert!(open_in_root(&dir, Path::new("abs/made"), Create::Dir).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn resolution_through_dot_dot_survives_renames_elsewhere() {
        // openat2 answers EAGAIN for a scoped `..` whenever any rename (or
        // mount) happens on the system meanwhile, as in parallel test runs.
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b/target")).unwrap();
        symlink("../..", root.path().join("a/b/up")).unwrap();
        let busy = tempfile::tempdir().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let stop = stop.clone();
            let (x, y) = (busy.path().join("x"), busy.path().join("y"));
            std::fs::write(&x, b"").unwrap();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            })
        };
        let dir = std::fs::File::open(root.path()).unwrap();
        let path = Path::new("a/b/up/a/b/up/a/b/target");
        open_in_root(&dir, path, Create::Nothing).unwrap();
        let failures: Vec<_> = (0..3000)
            .filter_map(|_| open_in_root(&dir, path, Create::Nothing).err())
            .collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(
            failures.is_empty(),
            "{} failures: {:?}",
            failures.len(),
            failures.first()
        );
    }

    #[test]
    fn open_in_root_regular_opens_a_regular_file_and_refuses_a_fifo_without_blocking() {
        use std::io::Read;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            b"root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        symlink("/etc/passwd", root.path().join("etc/link")).unwrap();
        nix::unistd::mkfifo(&root.path().join("etc/group"), Mode::S_IRWXU).unwrap();
        let mut passwd = Vec::new();
        open_in_root_regular(root.path(), Path::new("/etc/link"), 26)
            .unwrap()
            .read_to_end(&mut passwd)
            .unwrap();
        assert_eq!(passwd, b"root:x:0:0::/root:/bin/sh\n");
        let big = open_in_root_regular(root.path(), Path::new("/etc/link"), 25).unwrap_err();
        assert_eq!(big.kind(), io::ErrorKind::FileTooLarge, "{big}");
        let fifo = open_in_root_regular(root.path(), Path::new("/etc/group"), 1 << 20).unwrap_err();
        assert_eq!(fifo.kind(), io::ErrorKind::InvalidInput, "{fifo}");
    }

    #[test]
    fn canonicalize_resolves_symlinks_as_std_does() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        symlink("a/b", root.path().join("link")).unwrap();
        for path in ["link", "a/./b", "link/../b", "a"] {
            let path = root.path().join(path);
            assert_eq!(canonicalize(&path).unwrap(), path.canonicalize().unwrap());
        }
        let missing = canonicalize(&root.path().join("link/nothing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn creates_a_file_at_the_end() {
        let root = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(root.path()).unwrap();
        open_in_root(&dir, Path::new("/etc/resolv.conf"), Create::File).unwrap();
        assert!(root.path().join("etc/resolv.conf").is_file());
        assert!(open_in_root(&dir, Path::new("/a/../b"), Create::Dir).is_err());
    }

    #[test]
    fn remove_tree_stops_at_a_bind_mount_from_the_same_file_system() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts: run it as root"
        );
        let keep = tempfile::tempdir().unwrap();
        std::fs::write(keep.path().join("precious"), b"x").unwrap();
        let gone = tempfile::tempdir().unwrap();
        let top = gone.path().join("top");
        std::fs::create_dir_all(top.join("a/bound")).unwrap();
        let target = top.join("a/bound");
        nix::mount::mount(
            Some(keep.path()),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let r = remove_tree(&top);
        nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("refusing to cross a mount point at bound"));
        assert!(keep.path().join("precious").exists());
    }

    #[test]
    fn remove_tree_does_not_follow_symlinks() {
        let keep = tempfile::tempdir().unwrap();
        std::fs::write(keep.path().join("precious"), b"x").unwrap();
        let gone = tempfile::tempdir().unwrap();
        let top = gone.path().join("top");
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::write(top.join("a/b/f"), b"y").unwrap();
        symlink(keep.path(), top.join("a/link")).unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert!(keep.path().join("precious").exists());
    }
}
