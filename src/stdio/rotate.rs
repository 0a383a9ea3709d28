//! The log file of a `file://` sink, and its rotation.
//!
//! psdock is the only writer of the live file (the command writes into a pipe),
//! so a rotation is a rename of the live file and the creation of a fresh one
//! between two writes: no line is lost or written twice, and the rotation
//! waits for the end of the line being written, so that every file ends on a
//! line boundary. The renamed file is then compressed by a worker thread, off
//! the writer's path (see `super::archive`).
//!
//! Full disk: a write that fails with ENOSPC or EDQUOT is retried until it
//! succeeds. Meanwhile nothing more is read from the command, whose writes
//! block once the pipe is full: the command is held, not killed, and no line
//! is dropped. psdock says so once on stderr, and again when writes resume.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use tokio::time::Instant;

use super::archive::{archive_base, create, exists, with_suffix, Compressor};
use super::pump::Output;
use super::Rotation;

/// How long a write waits before it tries again on a full disk.
const FULL_DISK_RETRY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("must be an absolute path to a file")]
    NotAPath,
    #[error("no such directory {}", .0.display())]
    NoDir(PathBuf),
    #[error("is a symlink; refusing to follow it")]
    Symlink,
    #[error("not a regular file")]
    NotRegular,
    #[error("{0}")]
    Io(io::Error),
}

/// The live log file, appended to by psdock alone.
pub struct Log {
    path: PathBuf,
    dir: Arc<OwnedFd>,
    name: CString,
    file: OwnedFd,
    rotation: Option<Rotation>,
    next: Instant,
    /// A rotation is waiting for the end of the current line.
    due: bool,
    at_line_start: bool,
    /// Bytes went into the live file since it was created or opened.
    written: bool,
    last_stamp: SystemTime,
    /// Writes are failing for lack of space (said once).
    stalled: bool,
    compressor: Option<Compressor>,
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Log {
    /// Opens (or creates) the log at `path` for appending. `path`'s directory
    /// must exist; a symlink at `path` is refused.
    pub fn open(path: &Path, rotation: Option<Rotation>) -> Result<Log, LogError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(LogError::NotAPath);
        };
        if !path.is_absolute() || path.as_os_str().as_bytes().ends_with(b"/") {
            return Err(LogError::NotAPath);
        }
        let io_err = LogError::Io;
        let dir = nix::fcntl::open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => LogError::NoDir(parent.to_owned()),
            e => io_err(errno_io(e)),
        })?;
        // SAFETY: a descriptor open just returned.
        let dir = unsafe { OwnedFd::from_raw_fd(dir) };
        let name = CString::new(name.as_bytes()).map_err(|e| io_err(e.into()))?;
        let file = Self::open_live(&dir, &name).map_err(|e| match e {
            Errno::ELOOP => LogError::Symlink,
            Errno::ENODEV | Errno::ENXIO => LogError::NotRegular,
            e => io_err(errno_io(e)),
        })?;
        let st = nix::sys::stat::fstat(file.as_raw_fd()).map_err(|e| io_err(errno_io(e)))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(LogError::NotRegular);
        }
        Ok(Log {
            path: path.to_owned(),
            dir: Arc::new(dir),
            name,
            file,
            rotation,
            next: Instant::now() + rotation.map_or(Duration::ZERO, |r| r.every),
            due: false,
            at_line_start: true,
            written: st.st_size > 0,
            last_stamp: SystemTime::UNIX_EPOCH,
            stalled: false,
            compressor: None,
        })
    }

    fn open_live(dir: &OwnedFd, name: &CStr) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND;
        match create(dir, name, flags) {
            Err(Errno::EEXIST) => {
                // O_NONBLOCK: a FIFO planted at the path must not hang psdock;
                // it is refused as not a regular file right after.
                let fd = openat(
                    Some(dir.as_raw_fd()),
                    name,
                    flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                    Mode::empty(),
                )?;
                // SAFETY: a descriptor openat just returned.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let fl = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
                let fl = OFlag::from_bits_truncate(fl) - OFlag::O_NONBLOCK;
                nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(fl))?;
                Ok(fd)
            }
            r => r,
        }
    }

    async fn write_retrying(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let Some(&last) = buf.last() else {
            return Ok(());
        };
        while !buf.is_empty() {
            match nix::unistd::write(&self.file, buf) {
                Ok(n) => {
                    buf = &buf[n..];
                    if self.stalled {
                        self.stalled = false;
                        eprintln!("psdock: {}: writing again", self.path.display());
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::ENOSPC | Errno::EDQUOT)) => {
                    if !self.stalled {
                        self.stalled = true;
                        eprintln!(
                            "psdock: {}: {}; the command is held until space returns",
                            self.path.display(),
                            e.desc()
                        );
                    }
                    tokio::time::sleep(FULL_DISK_RETRY).await;
                }
                Err(e) => return Err(errno_io(e)),
            }
        }
        self.at_line_start = last == b'\n';
        self.written = true;
        Ok(())
    }

    /// A name `<log>.<stamp>` that is later than any used before and that
    /// no file (or symlink) holds, in any of its three forms.
    fn free_name(&mut self) -> CString {
        let mut t = SystemTime::now().max(self.last_stamp + Duration::from_nanos(1));
        loop {
            let base = archive_base(&self.name, t);
            if ["", ".gz", ".gz.tmp"]
                .iter()
                .all(|s| !exists(&self.dir, &with_suffix(&base, s)))
            {
                self.last_stamp = t;
                return base;
            }
            t += Duration::from_nanos(1);
        }
    }

    fn rotate(&mut self) {
        self.due = false;
        let Some(rotation) = self.rotation else {
            return;
        };
        let base = self.free_name();
        let dir = Some(self.dir.as_raw_fd());
        if let Err(e) = renameat2(
            dir,
            self.name.as_c_str(),
            dir,
            base.as_c_str(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            eprintln!(
                "psdock: {}: cannot rotate: {}",
                self.path.display(),
                e.desc()
            );
            return;
        }
        match Self::open_live(&self.dir, &self.name) {
            Ok(file) => {
                self.file = file;
                self.written = false;
                self.compressor
                    .get_or_insert_with(|| {
                        Compressor::start(self.dir.clone(), self.name.clone(), rotation.keep)
                    })
                    .send(base);
            }
            Err(e) => {
                // Keep writing to the file we have, under its old name.
                let back = renameat2(
                    dir,
                    base.as_c_str(),
                    dir,
                    self.name.as_c_str(),
                    RenameFlags::RENAME_NOREPLACE,
                );
                eprintln!(
                    "psdock: {}: cannot create a fresh log file ({}); {}",
                    self.path.display(),
                    e.desc(),
                    match back {
                        Ok(()) => "rotation skipped".to_owned(),
                        Err(_) => format!(
                            "still writing to {}",
                            OsStr::from_bytes(base.to_bytes()).to_string_lossy()
                        ),
                    }
                );
            }
        }
    }
}

impl Output for Log {
    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if self.due {
            if self.at_line_start {
                self.rotate();
            } else if let Some(i) = memchr::memrchr(b'\n', buf) {
                self.write_retrying(&buf[..=i]).await?;
                buf = &buf[i + 1..];
                self.rotate();
            }
        }
        self.write_retrying(buf).await
    }

    async fn timer(&mut self) {
        match self.rotation {
            Some(_) if !self.due => tokio::time::sleep_until(self.next).await,
            _ => std::future::pending().await,
        }
    }

    fn on_timer(&mut self) {
        let Some(rotation) = self.rotation else {
            return;
        };
        self.next = Instant::now() + rotation.every;
        // An empty period leaves no archive behind.
        if self.written {
            self.due = true;
            if self.at_line_start {
                self.rotate();
            }
        }
    }
}
