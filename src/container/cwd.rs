//! The command's working directory, entered from inside the container's root
//! only (the CVE-2024-21626 class). A plain `chdir` follows `/proc` magic links:
//! `-cwd /proc/self/fd/N`, or an image's `WorkingDir` saying so, would land on
//! whatever descriptor N is at that moment (the lock psdock holds on the hidden
//! sibling, a directory psdock inherited from its parent), on the host, and
//! `..` from there walks the host's tree.
//!
//! Runs in the cloned child (see `spawn::launch`): plain system calls on the
//! plan's C string and the stack, nothing allocated.

use std::ffi::CStr;

use nix::errno::Errno;

use super::report::{Failure, Stage};

/// [`Failure::index`] of a `Stage::Cwd` failure whose directory was opened but
/// is not below the container's root (`getcwd` says "(unreachable)").
pub const OUTSIDE: u16 = 1;

/// How often `openat2` is retried when the kernel answers EAGAIN (a rename or
/// mount elsewhere raced the walk), as `fsutil` does.
const TRIES: u32 = 1000;

/// Opens `cwd` with every symlink resolved as if the container's root were `/`
/// (`RESOLVE_IN_ROOT`), refusing magic links (`RESOLVE_NO_MAGICLINKS`: ELOOP),
/// then enters it with `fchdir` and checks that the kernel sees it below the
/// root, as runc's `verifyCwd` does. Not `RESOLVE_NO_XDEV`: binds and the
/// container's own /proc, /dev, /sys are other mounts, and a working directory
/// in one of them is legitimate. A missing directory or a file keeps the
/// errors a `chdir` gives (ENOENT, ENOTDIR, EACCES).
pub fn enter(cwd: &CStr) -> Result<(), Failure> {
    let fail = |errno| Failure::new(Stage::Cwd, errno);
    // The root of this process is the container's (pivot_root or chroot).
    // SAFETY: a constant C string; the result is a new descriptor closed below.
    let root = unsafe {
        libc::open(
            c"/".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root < 0 {
        return Err(fail(Errno::last()));
    }
    let dir = open_in_root(root, cwd);
    // SAFETY: our own descriptor, not used again.
    unsafe { libc::close(root) };
    let dir = dir.map_err(fail)?;
    // SAFETY: a descriptor we own; closed right after.
    let entered = unsafe { libc::fchdir(dir) };
    let errno = Errno::last();
    unsafe { libc::close(dir) };
    if entered != 0 {
        return Err(fail(errno));
    }
    if !below_root() {
        return Err(Failure {
            stage: Stage::Cwd,
            index: OUTSIDE,
            errno: Errno::EXDEV,
        });
    }
    Ok(())
}

fn open_in_root(root: libc::c_int, cwd: &CStr) -> Result<libc::c_int, Errno> {
    // SAFETY: open_how is plain data; all-zero is its "no options" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    for _ in 0..TRIES {
        // SAFETY: `how` and `cwd` outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                cwd.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            return Ok(fd as libc::c_int);
        }
        if Errno::last() != Errno::EAGAIN {
            return Err(Errno::last());
        }
    }
    Err(Errno::EAGAIN)
}

/// Whether the kernel can name the working directory from this process's
/// root: it prefixes "(unreachable)" (Linux 2.6.36 and later), or fails, when
/// it cannot. Belt and braces behind `RESOLVE_IN_ROOT`.
fn below_root() -> bool {
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`. The raw
    // call, not glibc's getcwd, which would hide "(unreachable)" behind ENOENT
    // only since 2.27 and may allocate.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    n > 0 && buf[0] == b'/'
}
