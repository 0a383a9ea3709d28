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
