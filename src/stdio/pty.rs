//! The container's pseudo-terminal.
//!
//! It is allocated by the container's init from the container's own devpts
//! (so that `tty` inside prints `/dev/pts/0`), made the init's controlling
//! terminal and its fds 0, 1 and 2, and the master is handed to psdock over a
//! unix socket (SCM_RIGHTS) before exec, as runc's console socket does.
//! [`open_in_container`] runs in the cloned init: plain system calls only.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::pump::{Fd, Output};

/// A terminal size, rows by columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

/// What a sink asks of the container's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tty {
    /// Set before the command starts, so that it never sees a 0x0 terminal.
    pub size: Option<Size>,
    /// false for a remote peer, which has its own echo (as in the seed).
    pub echo: bool,
}

fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// The size of the terminal at `fd`, if it is one.
pub fn size(fd: BorrowedFd<'_>) -> Option<Size> {
    // SAFETY: TIOCGWINSZ fills a winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(Size {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the size of the terminal at `fd` (the kernel then sends SIGWINCH to
/// its foreground process group).
pub fn resize(fd: RawFd, size: Size) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// In the container's init, after its devpts is mounted and after setsid():
/// opens a new pty from `/dev/ptmx`, applies `tty`, gives the slave to `uid`,
/// makes it the controlling terminal and fds 0, 1, 2, and sends the master
/// over `channel`.
pub fn open_in_container(tty: &Tty, uid: u32, channel: RawFd) -> Result<(), Errno> {
    // SAFETY (whole function): system calls on descriptors this process owns.
    let master = check(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // TIOCGPTPEER opens the slave through the master's own devpts, with no
    // path lookup that a mount could redirect.
    let slave = check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some(size) = tty.size {
        resize(slave.as_raw_fd(), size)?;
    }
    if !tty.echo {
        let mut t = nix::sys::termios::tcgetattr(&slave)?;
        use nix::sys::termios::LocalFlags as L;
        t.local_flags
            .remove(L::ECHO | L::ECHOE | L::ECHOK | L::ECHONL);
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t)?;
    }
    check(unsafe { libc::fchown(slave.as_raw_fd(), uid, u32::MAX) })?;
    check(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    for target in 0..3 {
        check(unsafe { libc::dup2(slave.as_raw_fd(), target) })?;
    }
    let fds = [master.as_raw_fd()];
    let iov = [io::IoSlice::new(b"m")];
    sendmsg::<()>(
        channel,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// psdock's side: the master sent by [`open_in_container`], already queued on
/// `channel` once the init has executed the command.
pub fn receive(channel: &OwnedFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            let mut fds = fds.into_iter();
            if let Some(fd) = fds.next() {
                // SAFETY: the kernel just installed these descriptors for us.
                for extra in fds {
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the container sent no terminal",
    ))
}

/// The signals the container's terminal raised for the init's own process
/// group from what was typed, SIGINT or SIGQUIT, for the supervisor to apply
/// the PID-1 rule to: the init got them, but one it neither catches nor
/// ignores the kernel drops.
pub type Raised = tokio::sync::mpsc::UnboundedReceiver<i32>;

/// The pump's end of [`Raised`].
pub type Raise = tokio::sync::mpsc::UnboundedSender<i32>;

pub fn raised() -> (Raise, Raised) {
    tokio::sync::mpsc::unbounded_channel()
}

/// The container's terminal as the destination of the user's input: writes
/// to the master and reports in [`Raised`] the signal keys it carried.
pub struct Keys<'a> {
    master: &'a Fd,
    raise: Raise,
}

impl<'a> Keys<'a> {
    pub fn new(master: &'a Fd, raise: Raise) -> Self {
        Self { master, raise }
    }
}

impl Output for Keys<'_> {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Looked at before the bytes reach the line discipline: the settings
        // and foreground group they are processed with. The keys can be any
        // control byte (`stty intr ^X`), so the terminal is asked only when
        // one was typed.
        let raised = if buf.iter().any(|&b| b < 0x20 || b == 0x7f) {
            signal_keys(self.master.raw(), buf)
        } else {
            [None; 2]
        };
        self.master.write_all(buf).await?;
        for sig in raised.into_iter().flatten() {
            // The receiver is gone only once the supervisor has stopped.
            let _ = self.raise.send(sig);
        }
        Ok(())
    }
}

/// The signals, in the order typed, that `typed` makes the terminal of
/// `master` send to the init's process group: its VINTR and VQUIT keys, with
/// ISIG on, while the session's leader (the init) is in the foreground.
fn signal_keys(master: RawFd, typed: &[u8]) -> [Option<i32>; 2] {
    // SAFETY: tcgetattr on the master reads the slave's termios.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(master, &mut t) } != 0 || t.c_lflag & libc::ISIG == 0 {
        return [None; 2];
    }
    // _POSIX_VDISABLE (0) turns a key off.
    let at = |key: usize| {
        let c = t.c_cc[key];
        (c != 0).then(|| memchr::memchr(c, typed)).flatten()
    };
    let (int, quit) = (at(libc::VINTR), at(libc::VQUIT));
    if (int, quit) == (None, None) || !init_in_foreground(master) {
        return [None; 2];
    }
    let mut keys = [(int, libc::SIGINT), (quit, libc::SIGQUIT)];
    keys.sort_by_key(|&(at, _)| at.unwrap_or(usize::MAX));
    keys.map(|(at, sig)| at.map(|_| sig))
}

/// The init made itself a session leader and this terminal its controlling
/// one, so its group is in the foreground when the foreground group is the
/// session's. Both ids are in psdock's pid namespace.
fn init_in_foreground(master: RawFd) -> bool {
    let (mut pgrp, mut sid): (libc::pid_t, libc::pid_t) = (0, 0);
    // SAFETY: both ioctls fill a pid_t; on a master they answer for the slave.
    unsafe {
        libc::ioctl(master, libc::TIOCGPGRP, &mut pgrp) == 0
            && libc::ioctl(master, libc::TIOCGSID, &mut sid) == 0
            && pgrp == sid
    }
}

/// The foreground process group of the container's terminal, as a hang-up
/// must reach it.
pub enum Foreground {
    /// The init's own group (the init is the session's leader, so its group is
    /// the one its pid numbers).
    Init,
    /// Another group of the container's session: its number, and a pidfd of
    /// its leader.
    Group(libc::pid_t, OwnedFd),
    /// None, or one whose leader has gone: the init alone is told.
    Unknown,
}

/// The foreground process group of the terminal at `master`, whose session
/// is led by `init`. The group's number is only a number: its leader is
/// pinned by a pidfd and then checked to be in the container's session
/// (alive after the look, so the look was at it), so that a number the
/// kernel has handed on in between never sends a hang-up outside.
pub fn foreground(master: RawFd, init: libc::pid_t) -> Foreground {
    let mut pgrp: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP fills a pid_t; on a master it answers for the slave.
    if unsafe { libc::ioctl(master, libc::TIOCGPGRP, &mut pgrp) } != 0 || pgrp <= 0 {
        return Foreground::Unknown;
    }
    if pgrp == init {
        return Foreground::Init;
    }
    let Ok(leader) = crate::proc::pidfd_open(nix::unistd::Pid::from_raw(pgrp)) else {
        return Foreground::Unknown;
    };
    // SAFETY: getsid and a null signal through the pidfd are plain calls.
    let ours = unsafe { libc::getsid(pgrp) } == init
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                leader.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
    if ours {
        Foreground::Group(pgrp, leader)
    } else {
        Foreground::Unknown
    }
}

/// Sends `sig` to process group `pgrp`, which the process of `leader` leads.
/// PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9) names the group by the leader's
/// pid itself, held by the pidfd, rather than by a number that could be
/// reused; an older kernel gets the number, just checked by [`foreground`].
pub fn signal_group(leader: RawFd, pgrp: libc::pid_t, sig: i32) {
    const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;
    // SAFETY: plain system calls. A group already gone (ESRCH) is no error:
    // the hang-up has nobody left to reach.
    unsafe {
        let r = libc::syscall(
            libc::SYS_pidfd_send_signal,
            leader,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            PIDFD_SIGNAL_PROCESS_GROUP,
        );
        if r != 0 && Errno::last() == Errno::EINVAL {
            libc::kill(-pgrp, sig);
        }
    }
}
