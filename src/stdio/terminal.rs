//! psdock's own terminal as the input of an interactive run: raw mode while
//! psdock is in its foreground, and job control respected.
//!
//! A psdock started in the background (`psdock ... &`, or sent there with
//! `bg`) leaves the terminal to the shell: its mode is not touched and
//! nothing is read from it (a read would fail with EIO, SIGTTIN being
//! ignored, and that is "not now", not the end of input). Brought to the
//! foreground (SIGCONT, which the supervisor passes on through
//! [`Host::waker`], or the next check of a timer), psdock puts the terminal
//! in raw mode and starts reading. The settings found are put back at the end
//! only if the terminal still has the ones psdock set: a shell that has taken
//! its terminal back keeps its own.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use tokio::sync::Notify;

use super::pump::{Fd, Input};

/// How often a psdock in the background looks whether it has been brought to
/// the foreground without a SIGCONT, or its terminal has hung up.
const CHECK: Duration = Duration::from_secs(1);

/// Where psdock stands on its terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Foreground,
    Background,
    /// Hung up: the end of input.
    Gone,
}

/// psdock's terminal, read from while psdock is in its foreground.
pub struct Host {
    input: Fd,
    /// The terminal as psdock was given it, for its settings and job control.
    tty: OwnedFd,
    wake: Rc<Notify>,
    /// The settings psdock found before it made the terminal raw, and the raw
    /// ones it set.
    found: Option<(Termios, Termios)>,
}

impl Host {
    /// `terminal`: psdock's stdin. Must run inside the runtime.
    ///
    /// A psdock in the foreground makes its terminal raw here.
    pub fn new(terminal: BorrowedFd<'_>) -> io::Result<Self> {
        let mut host = Self {
            input: Fd::new(reopen_nonblocking(terminal, false)?)?,
            tty: terminal.try_clone_to_owned()?,
            wake: Rc::default(),
            found: None,
        };
        // Before the container's first output is shown, as a foreground
        // psdock always did.
        if host.place() == Place::Foreground {
            host.raw()?;
        }
        Ok(host)
    }

    /// Woken, a psdock in the background looks again at once.
    pub fn waker(&self) -> Rc<Notify> {
        self.wake.clone()
    }

    fn place(&self) -> Place {
        let fd = self.tty.as_raw_fd();
        // SAFETY: tcgetpgrp and getpgrp only answer.
        let foreground = unsafe { libc::tcgetpgrp(fd) };
        if foreground >= 0 {
            return if foreground == unsafe { libc::getpgrp() } {
                Place::Foreground
            } else {
                Place::Background
            };
        }
        match Errno::last() {
            // Not psdock's controlling terminal: no job control to respect.
            Errno::ENOTTY => Place::Foreground,
            // A hung-up terminal answers EIO to every question.
            _ => Place::Gone,
        }
    }

    /// Raw mode, unless the terminal has it from psdock already.
    fn raw(&mut self) -> io::Result<()> {
        let fd = self.tty.as_fd();
        let now = tcgetattr(fd)?;
        if let Some((_, set)) = &self.found {
            if same(set, &now) {
                return Ok(());
            }
        }
        // What the shell gave psdock now is what it gets back at the end.
        let mut raw = now.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSADRAIN, &raw)?;
        // Read back: the terminal may not take every setting asked for.
        let set = tcgetattr(fd)?;
        self.found = Some((now, set));
        Ok(())
    }
}

/// Whether two settings are the same, as far as the terminal's behaviour goes.
fn same(a: &Termios, b: &Termios) -> bool {
    a.input_flags == b.input_flags
        && a.output_flags == b.output_flags
        && a.control_flags == b.control_flags
        && a.local_flags == b.local_flags
        && a.control_chars == b.control_chars
}

impl Input for Host {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.place() {
                Place::Gone => return Ok(0),
                Place::Background => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(CHECK) => {}
                    }
                    continue;
                }
                Place::Foreground => self.raw()?,
            }
            // A SIGCONT while waiting: psdock may have been stopped and its
            // shell have taken the terminal back and reset it meanwhile.
            let n = tokio::select! {
                r = self.input.read(buf) => r?,
                () = self.wake.notified() => continue,
            };
            // EIO, taken for the end by `Fd::read`, is also what a read from
            // the background gets: psdock may have been sent there meanwhile.
            if n > 0 || self.place() != Place::Background {
                return Ok(n);
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let Some((found, set)) = &self.found else {
            return;
        };
        let fd = self.tty.as_fd();
        if tcgetattr(fd).is_ok_and(|now| same(&now, set)) {
            // TCSADRAIN: what the container wrote is shown with the settings
            // it was written for, then the shell gets its terminal back.
            let _ = tcsetattr(fd, SetArg::TCSADRAIN, found);
        }
    }
}

/// A fresh open file description of the same file as `fd`, non-blocking. Used
/// for psdock's own terminal and pipes: setting O_NONBLOCK on the inherited
/// description would also change it for the shell that shares it.
pub fn reopen_nonblocking(fd: BorrowedFd<'_>, write: bool) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}
