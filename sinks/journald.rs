//! `journald`: `journald://` or `journald://?tag=NAME`. Picked by the
//! `journald` scheme.
//!
//! One journal entry per line of the command's output, sent with journald's
//! native protocol to `/run/systemd/journal/socket`: a datagram per entry,
//! or, for an entry too large for a datagram, a sealed memfd passed with
//! SCM_RIGHTS. The fields: `MESSAGE` (the line, after the prefix), `PRIORITY`
//! (6 for stdout, 3 for stderr), `SYSLOG_IDENTIFIER` (the tag, the command's
//! name by default), docker's `CONTAINER_ID` and `CONTAINER_NAME` (psdock's
//! id and `-hostname`), and `PSDOCK_IMAGE`. stdin is /dev/null.
//!
//! The protocol is written here rather than with the `libsystemd` crate: it
//! is a handful of `NAME=value` lines, that crate's writer builds each entry
//! in fresh allocations and blocks on a full socket, where psdock must wait in
//! its runtime (and hold the command) instead.
//!
//! No journald listening is psdock's error, before the container exists. A
//! journald that goes away later holds the command until it is back
//! (`crate::stdio::lines`).

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use tokio::io::unix::AsyncFd;

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::lines::{self, Deliver, Hold};
use crate::stdio::Origin;

const SOCKET: &str = "/run/systemd/journal/socket";

/// The longest `MESSAGE`: a longer line is cut into entries of this size.
const MAX_LINE: usize = 1 << 20;

struct Journald;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "journald",
        feature: "stdio-journald",
        priority: 0,
        summary: "an entry in the systemd journal for each line of stdout and stderr",
        probe: always_usable,
        build: Some(|_| Box::new(Journald)),
    }
}

impl StdioSink for Journald {
    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let fail = |why: String| format!("-stdio {}: {why}", spec.url);
            let (place, query) = lines::query(&spec.target, &["tag"]).map_err(fail)?;
            if !place.is_empty() {
                return Err(fail("expected journald:// or journald://?tag=NAME".into()).into());
            }
            let sock = dial()
                .map_err(|e| fail(format!("no journald listening on {SOCKET}: {}", e.desc())))?;
            let sink = Journal {
                sock: Some(sock),
                ready: None,
                tag: lines::tag(&query, &spec.origin.command),
                origin: spec.origin.clone(),
                fields: Vec::new(),
                hold: Hold::new(format!("journald ({SOCKET})")),
            };
            Ok(lines::stdio(sink, spec.prefix.clone(), MAX_LINE)?)
        })
    }
}

/// A datagram socket connected to journald, non-blocking.
fn dial() -> Result<OwnedFd, Errno> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    connect(sock.as_raw_fd(), &UnixAddr::new(SOCKET)?)?;
    Ok(sock)
}

struct Journal {
    /// The socket until its first use, when it is registered with the
    /// runtime the pump runs in (`ready`).
    sock: Option<OwnedFd>,
    ready: Option<AsyncFd<OwnedFd>>,
    tag: String,
    origin: Origin,
    /// The fields every entry has, encoded once the container's id is known.
    fields: Vec<u8>,
    hold: Hold,
}

/// Appends a field in the protocol's binary-safe form: the name, a newline,
/// the value's length (64-bit little-endian), the value, a newline.
fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl Journal {
    fn fields(&mut self) -> &[u8] {
        if self.fields.is_empty() {
            let id = self.origin.id.get().map_or("", String::as_str);
            field(&mut self.fields, "SYSLOG_IDENTIFIER", self.tag.as_bytes());
            field(&mut self.fields, "CONTAINER_ID", id.as_bytes());
            field(
                &mut self.fields,
                "CONTAINER_NAME",
                self.origin.name.as_bytes(),
            );
            field(
                &mut self.fields,
                "PSDOCK_IMAGE",
                self.origin.image.as_bytes(),
            );
        }
        &self.fields
    }

    /// Sends one entry: a datagram, or a memfd when it is too large for one.
    async fn send(&mut self, entry: &[IoSlice<'_>]) -> io::Result<()> {
        match self.sendmsg(entry, &[]).await {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                let memfd = memfd(entry)?;
                self.sendmsg(&[], &[memfd.as_raw_fd()]).await
            }
            r => r,
        }
    }

    /// One sendmsg, waiting in the runtime while journald's queue is full.
    async fn sendmsg(&mut self, iov: &[IoSlice<'_>], fds: &[RawFd]) -> io::Result<()> {
        if let Some(sock) = self.sock.take() {
            // SAFETY: an OwnedFd stays open, on the same description, for as
            // long as the AsyncFd that owns it.
            self.ready = Some(unsafe { AsyncFd::register(sock) }?);
        }
        let ready = self
            .ready
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs = if fds.is_empty() { &[][..] } else { &rights[..] };
        loop {
            let mut guard = ready.writable().await?;
            let sent = guard.try_io(|fd| {
                sendmsg::<()>(fd.as_raw_fd(), iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => return r.map(drop),
                Err(_would_block) => {}
            }
        }
    }

    /// After a failure: a journald that restarted has a new socket.
    fn redial(&mut self) {
        if let Ok(sock) = dial() {
            self.ready = None;
            self.sock = Some(sock);
        }
    }
}

/// The protocol's way for a large entry: written to a memfd and sealed, so
/// that journald can read it in place; the descriptor is then sent alone.
fn memfd(entry: &[IoSlice<'_>]) -> io::Result<std::fs::File> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd = memfd_create(
        c"psdock-journal-entry",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    for part in entry {
        file.write_all(part)?;
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS takes an int, on a descriptor this owns.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

impl Deliver for Journal {
    async fn deliver(&mut self, stderr: bool, prefix: &[u8], text: &[u8]) {
        let priority: &[u8] = if stderr {
            b"PRIORITY=3\n"
        } else {
            b"PRIORITY=6\n"
        };
        let len = ((prefix.len() + text.len()) as u64).to_le_bytes();
        self.fields();
        let fields = std::mem::take(&mut self.fields);
        let entry = [
            IoSlice::new(priority),
            IoSlice::new(&fields),
            IoSlice::new(b"MESSAGE\n"),
            IoSlice::new(&len),
            IoSlice::new(prefix),
            IoSlice::new(text),
            IoSlice::new(b"\n"),
        ];
        loop {
            match self.send(&entry).await {
                Ok(()) => break,
                Err(e) => {
                    self.hold.failed(&crate::error::plain(&e)).await;
                    self.redial();
                }
            }
        }
        self.hold.delivered();
        self.fields = fields;
    }
}
