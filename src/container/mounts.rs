//! The container's own file systems, mounted after pivot_root so that no path can
//! lead back to the host: /proc, a tmpfs /dev with the usual nodes, a private
//! devpts, /dev/shm, mqueue, a read-only /sys, and runc's masked and read-only
//! /proc paths.
//!
//! Device nodes work only where psdock put them: every mount of the container
//! is `nodev` but devpts and the standard nodes in /dev, each its own bind
//! mount, as bubblewrap does. A node made or shipped anywhere else (with
//! `-cap-add MKNOD`, in an image, through a bind mount) cannot be opened.

use std::ffi::CStr;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::unistd::{mkdir, symlinkat};

/// runc's default masked paths: hidden behind /dev/null or an empty tmpfs.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const NONE: Option<&str> = None;

fn mkdir_p(path: &str) -> Result<(), Errno> {
    match mkdir(path, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

fn fs(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Errno> {
    mkdir_p(target)?;
    mount(Some(source), target, Some(fstype), flags, data)
}

pub fn system(devices: &[super::plan::PlannedDevice]) -> Result<(), Errno> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    fs("proc", "/proc", "proc", hardened, None)?;
    fs(
        "tmpfs",
        "/dev",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // Made while /dev still honours nodes, and each bound onto itself: a bind
    // mount keeps the flags it was made with, so the nodes stay usable once
    // /dev itself turns nodev below. (Cheaper than binding the host's nodes,
    // which takes an open_tree, a file to mount on and a move_mount each.)
    for (name, major, minor) in [
        (c"/dev/null", 1, 3),
        (c"/dev/zero", 1, 5),
        (c"/dev/full", 1, 7),
        (c"/dev/random", 1, 8),
        (c"/dev/urandom", 1, 9),
        (c"/dev/tty", 5, 0),
    ] {
        mknod(
            name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )?;
        mount(Some(name), name, NONE, MsFlags::MS_BIND, NONE)?;
    }
    // -device nodes, the same way; the devices cgroup says what they allow.
    for d in devices {
        for dir in &d.parents {
            match mkdir(dir.as_c_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        let kind = if d.block {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        match mknod(
            d.path.as_c_str(),
            kind,
            Mode::from_bits_truncate(d.mode),
            d.dev,
        ) {
            // One of the standard nodes, asked for again: it is there.
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        mount(
            Some(d.path.as_c_str()),
            d.path.as_c_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )?;
    }
    mount(
        NONE,
        "/dev",
        NONE,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_STRICTATIME,
        NONE,
    )?;
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ] {
        symlinkat(target, None, link)?;
    }
    fs(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    fs(
        "shm",
        "/dev/shm",
        "tmpfs",
        hardened,
        Some("mode=1777,size=65536k"),
    )?;
    fs("mqueue", "/dev/mqueue", "mqueue", hardened, None)?;
    fs(
        "sysfs",
        "/sys",
        "sysfs",
        hardened | MsFlags::MS_RDONLY,
        None,
    )?;
    Ok(())
}

/// Applied last, after the user's bind mounts, so that none of them can undo it.
///
/// Each path is mounted over directly, as runc does: a path this kernel lacks
/// fails with ENOENT and is skipped, so no lookup is spent on asking first. The
/// masked directories share one empty read-only tmpfs, the first one's,
/// instead of a superblock each to set up and tear down.
pub fn mask() -> Result<(), Errno> {
    let mut empty_dir: Option<&str> = None;
    for &path in MASKED {
        let r = match mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE) {
            // Not a file: a directory, hidden behind the empty tmpfs.
            Err(Errno::ENOTDIR) => match empty_dir {
                Some(dir) => mount(Some(dir), path, NONE, MsFlags::MS_BIND, NONE),
                None => {
                    let r = mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE);
                    if r.is_ok() {
                        empty_dir = Some(path);
                    }
                    r
                }
            },
            r => r,
        };
        match r {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    for &path in READONLY {
        match mount(
            Some(path),
            path,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        }
        mount(
            NONE,
            path,
            NONE,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            NONE,
        )?;
    }
    Ok(())
}

/// A detached copy of the mount tree at `source` (`open_tree`), `nodev` and
/// read-only if asked, to be attached later with [`attach`]. Opened before
/// pivot_root, while host paths are still reachable. Nodev because a host
/// device behind a bind mount is as much a way out as one made in the
/// container (docker's device cgroup denies those too).
pub fn clone_tree(source: &CStr, readonly: bool) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    let flags =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: source is a valid C string; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, source.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    let mut attr_set = libc::MOUNT_ATTR_NODEV;
    if readonly {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: attr has the kernel's layout and outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(fd)
}

/// Attaches a tree from [`clone_tree`] onto an already resolved target.
pub fn attach(
    tree: &impl std::os::fd::AsRawFd,
    target: &impl std::os::fd::AsRawFd,
) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both are valid descriptors; empty paths with the EMPTY_PATH flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
