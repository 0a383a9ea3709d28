//! psdock-exec's own binary, out of the container's reach (the CVE-2019-5736
//! class).
//!
//! Until it executes the command, a process psdock-exec starts in a container
//! is psdock-exec: `/proc/<pid>/exe` names the host's binary. A command that is
//! a script starting `#!/proc/self/exe` runs that binary again inside the
//! container, dumpable, and another process there, already running, opens its
//! `/proc/<pid>/exe` and writes the host's binary once it has ended. So
//! psdock-exec first re-executes itself, once, from a view of its binary that
//! cannot be written:
//!
//! - a read-only clone of the binary's mount, detached (`open_tree` with
//!   `OPEN_TREE_CLONE`, `mount_setattr` `MOUNT_ATTR_RDONLY`), executed through
//!   its descriptor (`execveat` with `AT_EMPTY_PATH`). The clone lives in an
//!   anonymous mount namespace that is dissolved when the descriptor closes at
//!   that exec: from then on it is in no namespace, so no one can remount it or
//!   clone it (both need the mount to be in the caller's namespace), and every
//!   open through `/proc/<pid>/exe` meets a read-only mount: EROFS. No copy,
//!   no file left anywhere, two system calls and one exec (Linux 5.12).
//! - else (an older kernel, `open_tree` refused) a copy in a sealed memfd
//!   (`F_SEAL_WRITE`, `F_SEAL_SEAL`...), as runc 1.1 did: a write through it
//!   fails with EPERM, at the price of copying the binary at every start.
//!
//! runc 1.2 mounts a private overlay of the binary's directory instead, which
//! stays read-only even if a mount flag could be lifted; here no one can reach
//! the mount to lift it, and the overlay costs a superblock set-up per start.
//!
//! Whether it is done is read from the binary itself, not the environment:
//! `/proc/self/exe` on a read-only mount, or a write-sealed memfd. A binary
//! installed on a read-only file system thus starts without a second exec.
//! Only root re-executes: nobody else can enter a container.
//!
//! The price is that second exec of a static binary at every start: about
//! 0.4 ms of CPU and 55 page faults (measured with psdock's binary:
//! `perf stat psdock -version`, 0.83-0.91 against 0.41-0.49 ms from a
//! read-only mount), of which the mount clone and its dissolution are some
//! 45 us. psdock itself does not pay it: when its init runs, no other process
//! of the container exists yet, so a look at the init's exe right after the
//! exec is enough there (`container::spawn`).

use std::ffi::{CStr, CString, OsString};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot seal its own binary against the container ({what}: {})", .errno.desc())]
    Failed { what: &'static str, errno: Errno },
}

const SELF: &CStr = c"/proc/self/exe";

// From <linux/mount.h>; the libc crate has the system call numbers only.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// Re-executes this process from a sealed view of its binary with the same
/// arguments and environment, unless it already runs from one or is not
/// root. Returns only then, or with the reason it could not: a root psdock
/// must not go on unsealed. `argv` is `main`'s, NULL-terminated.
///
/// # Safety
/// `argv` must be a NULL-terminated array of C strings that outlives the call,
/// and no other thread may be running (the exec replaces the process).
unsafe fn reexec_sealed(argv: *const *const c_char) -> Result<(), SealError> {
    // SAFETY: plain system calls.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    if sealed() {
        // SAFETY: the caller's contract.
        unsafe { name_after(argv) };
        return Ok(());
    }
    let envp = unsafe { environ };
    let mount_error = match read_only_clone() {
        Ok(fd) => {
            // SAFETY: `argv` and `envp` are NULL-terminated and live; returns
            // only on failure.
            let e = unsafe { execveat(fd, argv, envp) };
            unsafe { libc::close(fd) };
            e
        }
        Err(e) => e,
    };
    match sealed_copy() {
        Ok(fd) => {
            let e = unsafe { execveat(fd, argv, envp) };
            unsafe { libc::close(fd) };
            Err(SealError::Failed {
                what: "execute the sealed copy",
                errno: e,
            })
        }
        Err(Errno::ENOSYS) => Err(SealError::Failed {
            what: "clone a read-only mount of it",
            errno: mount_error,
        }),
        Err(errno) => Err(SealError::Failed {
            what: "copy it into a sealed memfd",
            errno,
        }),
    }
}

/// [`reexec_sealed`] for a `main` that has `std::env::args_os` rather than C's argv.
pub fn reexec_sealed_with(args: impl IntoIterator<Item = OsString>) -> Result<(), SealError> {
    let args: Vec<CString> = args
        .into_iter()
        // The kernel handed these over as C strings: no NUL inside.
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let argv: Vec<*const c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: NULL-terminated, and `args` outlives the call; called first
    // thing in `main`, before any thread.
    unsafe { reexec_sealed(argv.as_ptr()) }
}

/// Whether this process runs from a read-only mount or a write-sealed memfd.
fn sealed() -> bool {
    // SAFETY: a zeroed statvfs is a valid buffer for the kernel to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(SELF.as_ptr(), &mut st) } == 0 && st.f_flag & libc::ST_RDONLY != 0 {
        return true;
    }
    // SAFETY: plain system calls on a descriptor of our own.
    unsafe {
        let fd = libc::open(SELF.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let seals = libc::fcntl(fd, libc::F_GET_SEALS);
        libc::close(fd);
        seals > 0 && seals & libc::F_SEAL_WRITE != 0
    }
}

/// A detached, read-only clone of the mount of this process's binary: the
/// descriptor (close-on-exec) names the binary itself.
fn read_only_clone() -> Result<libc::c_int, Errno> {
    // SAFETY: plain system calls on constant strings and local data.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            SELF.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        );
        if fd < 0 {
            return Err(Errno::last());
        }
        let fd = fd as libc::c_int;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        if libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) != 0
        {
            let e = Errno::last();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// A copy of this process's binary in a memfd sealed against any change.
fn sealed_copy() -> Result<libc::c_int, Errno> {
    // Since Linux 6.3 a memfd is executable only when asked (MFD_EXEC), and
    // older kernels refuse the flag.
    const MFD_EXEC: libc::c_uint = 0x10;
    // SAFETY: plain system calls on descriptors of our own.
    unsafe {
        let src = libc::open(SELF.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if src < 0 {
            return Err(Errno::last());
        }
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let mut fd = libc::memfd_create(c"psdock".as_ptr(), flags | MFD_EXEC);
        if fd < 0 && Errno::last() == Errno::EINVAL {
            fd = libc::memfd_create(c"psdock".as_ptr(), flags);
        }
        let result = if fd < 0 {
            Err(Errno::last())
        } else {
            copy_and_seal(src, fd)
        };
        libc::close(src);
        if result.is_err() && fd >= 0 {
            libc::close(fd);
        }
        result.map(|()| fd)
    }
}

fn copy_and_seal(src: libc::c_int, dst: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain system calls on open descriptors.
    unsafe {
        loop {
            let n = libc::sendfile(dst, src, std::ptr::null_mut(), 1 << 30);
            if n == 0 {
                break;
            }
            if n < 0 && Errno::last() != Errno::EINTR {
                return Err(Errno::last());
            }
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        if libc::fcntl(dst, libc::F_ADD_SEALS, seals) != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Before Linux 6.14, a process executed through a descriptor is named after
/// the descriptor's number ("3"), and since, after the file ("memfd:psdock"
/// for the copy): ps and pgrep would show that. Give it the name its path
/// would have given it.
///
/// # Safety
/// As for [`reexec_sealed`].
unsafe fn name_after(argv: *const *const c_char) {
    let mut comm = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes; argv[0], when there is
    // one, is a C string.
    unsafe {
        let given = |c: &[u8; 16]| {
            let name = &c[..c.iter().position(|&b| b == 0).unwrap_or(16)];
            !name.is_empty() && !name.iter().all(u8::is_ascii_digit) && !name.starts_with(b"memfd:")
        };
        if libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) != 0
            || given(&comm)
            || argv.is_null()
            || (*argv).is_null()
        {
            return;
        }
        let arg0 = CStr::from_ptr(*argv).to_bytes();
        let base = arg0.rsplit(|&b| b == b'/').next().unwrap_or(arg0);
        let mut name = [0u8; 16];
        let n = base.len().min(15);
        name[..n].copy_from_slice(&base[..n]);
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
}

/// Returns only on failure, with its errno.
unsafe fn execveat(
    fd: libc::c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Errno {
    // SAFETY: the caller's contract.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}
