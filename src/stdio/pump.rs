//! Moving bytes between the container and a sink, inside the supervisor's
//! current-thread runtime.
//!
//! The loop is a plain read into one 64 KiB buffer and a write of what came
//! (through the [`Prefixer`] when there is a prefix): no per-line work beyond
//! the prefix, no allocation on the way. `tokio::io::copy` into tokio's file
//! type ran 12 times slower here, since tokio's files hop through a thread
//! pool; regular files are written directly instead, which never blocks for
//! long.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::prefix::Prefixer;

/// The size of the pump's buffer, and of one read.
pub const BUF: usize = 64 * 1024;

/// A non-blocking descriptor registered with the runtime: a pipe end, a pty
/// master, psdock's own terminal.
pub struct Fd(AsyncFd<OwnedFd>);

impl Fd {
    /// Makes `fd` non-blocking and registers it. Must run inside the runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        set_nonblocking(&fd)?;
        // SAFETY: an OwnedFd stays open, on the same description, for as
        // long as the AsyncFd that owns it.
        Ok(Self(unsafe { AsyncFd::register(fd) }?))
    }

    pub fn raw(&self) -> std::os::fd::RawFd {
        self.0.get_ref().as_raw_fd()
    }

    /// 0 at end of file. A pty master whose slave is gone reads EIO, once all
    /// that was written to it has been read: that is its end of file.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.as_raw_fd(), buf).map_err(io::Error::from))
            {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd, buf).map_err(io::Error::from)) {
                Ok(Ok(n)) => buf = &buf[n..],
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

/// A pipe for the command's output, psdock's end first. It is enlarged (to
/// 1 MiB, or as far as the system allows) so that a fast writer is not woken
/// and put to sleep again for every 64 KiB psdock takes out of it.
pub fn output_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    const SIZE: libc::c_int = 1 << 20;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: F_SETPIPE_SZ takes an int; failure (over the limit) is harmless.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, SIZE) };
    Ok((r, w))
}

pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Where a byte stream comes from.
// The runtime is current-thread: nothing here needs to be Send.
#[allow(async_fn_in_trait)]
pub trait Input {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// The descriptor whose unread bytes count as undelivered when a copy
    /// is abandoned (a pipe or a terminal of the container's).
    fn source(&self) -> Option<RawFd> {
        None
    }
}

/// Where a byte stream goes.
#[allow(async_fn_in_trait)]
pub trait Output {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;

    /// Resolves when the output has timed work to do (a log's rotation, or
    /// the check that its path still leads to it); the pump
    /// then calls [`Output::on_timer`]. Never, by default.
    async fn timer(&mut self) {
        std::future::pending().await
    }

    fn on_timer(&mut self) {}

    /// The input ended: tell the other side (a TLS close_notify, a FIN).
    async fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Output> Output for &mut T {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        T::write_all(self, buf).await
    }

    async fn timer(&mut self) {
        T::timer(self).await
    }

    fn on_timer(&mut self) {
        T::on_timer(self)
    }

    async fn finish(&mut self) -> io::Result<()> {
        T::finish(self).await
    }
}

impl<T: Input> Input for &mut T {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        T::read(self, buf).await
    }
}

/// An output that stays open when its input ends: a connection that the
/// next container of a restart carries on with (see `crate::plugin::Held`).
pub struct Kept<O>(pub O);

impl<O: Output> Output for Kept<O> {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await
    }
}

impl Input for &Fd {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Fd::read(self, buf).await
    }

    fn source(&self) -> Option<RawFd> {
        Some(self.raw())
    }
}

impl Output for &Fd {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Fd::write_all(self, buf).await
    }
}

/// A tokio stream half (a TCP or TLS connection) as an [`Input`] or [`Output`].
pub struct Stream<S>(pub S);

impl<S: AsyncRead + Unpin> Input for Stream<S> {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).await
    }
}

impl<S: AsyncWrite + Unpin> Output for Stream<S> {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await?;
        // A TLS stream holds records until flushed: a prompt must reach the peer.
        self.0.flush().await
    }

    async fn finish(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

/// Why a copy stopped.
#[derive(Debug)]
pub enum Stop {
    /// The input ended: the container closed its side.
    End,
    Read(io::Error),
    Write(io::Error),
}

thread_local! {
    /// What the copies abandoned before their input ended left undelivered:
    /// see [`take_undelivered`]. The runtime is current-thread, and a psdock
    /// runs one container, so the count is the run's.
    static UNDELIVERED: Cell<u64> = const { Cell::new(0) };
}

/// The bytes of the command's output that copies dropped unfinished (the
/// supervisor gave up on a stuck sink) had taken but not written, plus those
/// still unread in their sources; reset to 0.
pub fn take_undelivered() -> u64 {
    UNDELIVERED.with(|u| u.replace(0))
}

/// Counts, when a copy is dropped before its end, what it held and what its
/// source still had.
struct Abandoned {
    held: usize,
    source: Option<RawFd>,
    ended: bool,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut unread: libc::c_int = 0;
        if let Some(fd) = self.source {
            // SAFETY: the source outlives this guard (it is `copy`'s
            // argument, dropped after its locals); FIONREAD fills an int.
            if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } < 0 {
                unread = 0;
            }
        }
        let lost = self.held as u64 + unread.max(0) as u64;
        UNDELIVERED.with(|u| u.set(u.get() + lost));
    }
}

/// Copies `input` to `output` through `prefixer` until the input ends or
/// either side fails. While the output is busy nothing is read, so a slow
/// output slows the writer down and memory stays at one buffer.
pub async fn copy(mut input: impl Input, prefixer: &mut Prefixer, output: impl Output) -> Stop {
    let mut buf = vec![0u8; BUF];
    let mut abandoned = Abandoned {
        held: 0,
        source: input.source(),
        ended: false,
    };
    let stop = copy_until_stop(&mut input, &mut buf, &mut abandoned.held, prefixer, output).await;
    abandoned.ended = true;
    stop
}

async fn copy_until_stop(
    input: &mut impl Input,
    buf: &mut [u8],
    held: &mut usize,
    prefixer: &mut Prefixer,
    mut output: impl Output,
) -> Stop {
    loop {
        let n = tokio::select! {
            biased;
            r = input.read(buf) => match r {
                Ok(0) => return match output.finish().await {
                    Ok(()) => Stop::End,
                    Err(e) => Stop::Write(e),
                },
                Ok(n) => n,
                Err(e) => return Stop::Read(e),
            },
            () = output.timer() => {
                output.on_timer();
                continue;
            }
        };
        *held = n;
        if let Err(e) = output.write_all(prefixer.apply(&buf[..n])).await {
            return Stop::Write(e);
        }
        *held = 0;
    }
}

/// Bridges the container's terminal to a peer (psdock's own terminal, a TCP
/// or TLS connection): the terminal's output goes through `prefixer` to
/// `output`, and `input` goes to the terminal. Ends `Drained` once the
/// container's side is closed and all of its output was delivered, or
/// `PeerGone` as soon as the peer stops (end of input, a read or write error),
/// with the error [`named`] after the side that failed: `sides` names the
/// input, then the output. The signal keys typed are reported to `raise`.
pub async fn bridge(
    master: &Fd,
    raise: super::pty::Raise,
    input: impl Input,
    prefixer: &mut Prefixer,
    output: impl Output,
    sides: [&str; 2],
) -> crate::plugin::PumpEnd {
    use crate::plugin::PumpEnd;
    let [from, to] = sides;
    let outgoing = async {
        match copy(master, prefixer, output).await {
            Stop::End | Stop::Read(_) => PumpEnd::Drained(None),
            Stop::Write(e) => PumpEnd::PeerGone(named(to, e)),
        }
    };
    let keys = super::pty::Keys::new(master, raise);
    let incoming = async {
        match copy(input, &mut Prefixer::new(None), keys).await {
            Stop::End => PumpEnd::PeerGone(named(from, io::ErrorKind::UnexpectedEof.into())),
            Stop::Read(e) => PumpEnd::PeerGone(named(from, e)),
            // The terminal is closing: its output decides the end.
            Stop::Write(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        end = outgoing => end,
        end = incoming => end,
    }
}

/// An error of one side of a transfer, with what that side is (`psdock's
/// stdout`, `-stdio tcp://host:port`), for the supervisor's message. Its kind
/// is the error's own, so that a peer that simply went away stays quiet.
pub fn named(side: &str, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        Side {
            side: side.to_owned(),
            error,
        },
    )
}

/// What the supervisor prints after `psdock: ` when a transfer fails: the
/// side [`named`], or `-stdio` for a sink that did not name it.
pub fn failure(e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Side>()) {
        Some(side) => side.to_string(),
        None => format!("-stdio: {e}"),
    }
}

#[derive(Debug)]
struct Side {
    side: String,
    error: io::Error,
}

impl std::fmt::Display for Side {
    /// psdock's messages give a system error's text alone, without io's
    /// "(os error N)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.side, crate::error::plain(&self.error))
    }
}

impl std::error::Error for Side {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_side_that_failed_or_else_stdio() {
        let full = || io::Error::from_raw_os_error(libc::ENOSPC);
        let e = named("-stdio tcp://127.0.0.1:9", full());
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            failure(&e),
            "-stdio tcp://127.0.0.1:9: No space left on device"
        );
        assert_eq!(
            failure(&named(
                "psdock's terminal",
                io::ErrorKind::UnexpectedEof.into()
            )),
            "psdock's terminal: unexpected end of file"
        );
        assert_eq!(
            failure(&full()),
            "-stdio: No space left on device (os error 28)"
        );
    }
}
