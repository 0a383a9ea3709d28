//! `inherit`: psdock's own stdin, stdout and stderr. Picked when no `-stdio`
//! is given. Every build has it (no feature).
//!
//! When psdock's stdin and stdout are both terminals, the container gets a
//! terminal of its own, bridged to psdock's, which is in raw mode while
//! psdock is in its foreground (Ctrl-C is a byte for the container's
//! terminal; in the background psdock neither reads nor sets it, see
//! `stdio::terminal`); its size is copied at start, on SIGWINCH and on
//! SIGCONT. Otherwise the command inherits psdock's stdin,
//! stdout and stderr as they are (separate streams), or, with a prefix, writes
//! stdout and stderr into two pipes that psdock prefixes onto its own.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Pump, PumpEnd, Stdio, StdioSink,
    StdioSpec, Transfer, Tty,
};
use crate::stdio::prefix::{Prefix, Prefixer};
use crate::stdio::pty;
use crate::stdio::pump::{bridge, copy, named, output_pipe, Fd, Output, Stop};
use crate::stdio::terminal::{reopen_nonblocking, Host};

struct Inherit;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "inherit",
        feature: "",
        priority: 0,
        summary: "psdock's own stdin, stdout and stderr; a tty on a terminal",
        probe: always_usable,
        build: Some(|_| Box::new(Inherit)),
    }
}

impl StdioSink for Inherit {
    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let prefix = spec.prefix.clone();
            if io::stdin().is_terminal() && io::stdout().is_terminal() {
                return Ok(Stdio {
                    child: Default::default(),
                    tty: Some(Tty {
                        size: pty::size(io::stdout().as_fd()),
                        echo: true,
                    }),
                    pump: Some(Box::new(Terminal { prefix })),
                });
            }
            let Some(prefix) = prefix else {
                return Ok(Stdio::default());
            };
            let (out_r, out_w) = output_pipe()?;
            let (err_r, err_w) = output_pipe()?;
            Ok(Stdio {
                child: [None, Some(out_w), Some(err_w)],
                tty: None,
                pump: Some(Box::new(Prefixed {
                    out: out_r,
                    err: err_r,
                    prefix,
                })),
            })
        })
    }
}

/// psdock's terminal bridged to the container's.
struct Terminal {
    prefix: Option<Prefix>,
}

impl Pump for Terminal {
    fn start(self: Box<Self>, pty: Option<OwnedFd>) -> io::Result<Transfer> {
        let master =
            Rc::new(Fd::new(pty.ok_or_else(|| {
                io::Error::other("the container has no terminal")
            })?)?);
        let input = Host::new(io::stdin().as_fd())?;
        let output = Fd::new(reopen_nonblocking(io::stdout().as_fd(), true)?)?;
        let resized = master.clone();
        let wake = input.waker();
        let mut prefixer = Prefixer::new(self.prefix);
        let (raise, raised) = pty::raised();
        Ok(Transfer {
            done: Box::pin(async move {
                let sides = ["psdock's terminal", "psdock's stdout"];
                bridge(&master, raise, input, &mut prefixer, &output, sides).await
            }),
            // Also called on SIGCONT: psdock may be back in the foreground.
            resize: Some(Box::new(move || {
                if let Some(size) = pty::size(io::stdout().as_fd()) {
                    let _ = pty::resize(resized.raw(), size);
                }
                wake.notify_one();
            })),
            raised: Some(raised),
        })
    }
}

/// The command's stdout and stderr, each prefixed onto psdock's own.
struct Prefixed {
    out: OwnedFd,
    err: OwnedFd,
    prefix: Prefix,
}

impl Pump for Prefixed {
    fn start(self: Box<Self>, _: Option<OwnedFd>) -> io::Result<Transfer> {
        let out = Fd::new(self.out)?;
        let err = Fd::new(self.err)?;
        let out_host = HostOutput::new(io::stdout().as_fd())?;
        let err_host = HostOutput::new(io::stderr().as_fd())?;
        let mut out_prefixer = Prefixer::new(Some(self.prefix.clone()));
        let mut err_prefixer = Prefixer::new(Some(self.prefix));
        Ok(Transfer {
            done: Box::pin(async move {
                let one = |stop, side| match stop {
                    Stop::Write(e) => Err(named(side, e)),
                    Stop::End | Stop::Read(_) => Ok(()),
                };
                let stdout = async {
                    one(
                        copy(&out, &mut out_prefixer, out_host).await,
                        "psdock's stdout",
                    )
                };
                let stderr = async {
                    one(
                        copy(&err, &mut err_prefixer, err_host).await,
                        "psdock's stderr",
                    )
                };
                match tokio::try_join!(stdout, stderr) {
                    Ok(_) => PumpEnd::Drained(None),
                    Err(e) => PumpEnd::PeerGone(e),
                }
            }),
            resize: None,
            raised: None,
        })
    }
}

/// One of psdock's own outputs. A regular file is written directly (it never
/// makes a write wait, and the shell's offset and O_APPEND must be kept); a
/// pipe or terminal is reopened non-blocking, so that a stalled reader holds
/// the command but not the supervisor; a socket, which cannot be reopened, is
/// written blocking. So is a descriptor epoll refuses (EPERM: `/dev/null`
/// under cron or systemd, most character devices): the kernel refuses it
/// because it has no way to wait, so a write to it never waits either.
enum HostOutput {
    Direct(OwnedFd),
    Async(Fd),
}

impl HostOutput {
    fn new(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            if let Ok(fresh) = reopen_nonblocking(fd, true) {
                match Fd::new(fresh) {
                    Ok(fresh) => return Ok(HostOutput::Async(fresh)),
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(HostOutput::Direct(fd.try_clone_to_owned()?))
    }
}

impl Output for HostOutput {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            HostOutput::Async(fd) => fd.write_all(buf).await,
            HostOutput::Direct(fd) => {
                let mut buf = buf;
                while !buf.is_empty() {
                    match nix::unistd::write(&*fd, buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }
}
