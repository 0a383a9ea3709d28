//! psdock's own terminal: raw mode for the length of an interactive run.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// The terminal in raw mode (no echo, no line editing, no signal keys: Ctrl-C
/// is a byte for the container's terminal to act on). Dropping it restores the
/// settings it found, on every way out of a run that unwinds.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(terminal: BorrowedFd<'_>) -> io::Result<Self> {
        let fd = terminal.try_clone_to_owned()?;
        let saved = tcgetattr(&fd)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSADRAIN, &raw)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // TCSADRAIN: what the container wrote is shown with the settings it was
        // written for, then the shell gets its terminal back as it was.
        let _ = tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// A fresh open file description of the same file as `fd`, non-blocking. Used
/// for psdock's own terminal and pipes: setting O_NONBLOCK on the inherited
/// description would also change it for the shell that shares it.
pub fn reopen_nonblocking(fd: BorrowedFd<'_>, write: bool) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}
