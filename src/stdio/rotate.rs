//! The log file of a `file://` sink, and its rotation.
//!
//! psdock is the only writer of the live file (the command writes into a pipe),
//! so a rotation is a rename of the live file and the creation of a fresh one
//! between two writes: no line is lost or written twice, and the rotation
//! waits for the end of the line being written, so that every file ends on a
//! line boundary. The renamed file is then compressed by a worker thread, off
//! the writer's path (see `super::archive`).
//!
//! Someone else may move or delete the live file (logrotate without
//! copytruncate, an operator's `mv` or `rm`). Once a second psdock compares
//! the path with the file it writes to (one `fstatat`, none per line: a
//! timer costs less than an inotify descriptor, and also sees a path replaced
//! on a network file system); when they differ, it opens the path afresh at
//! the next line boundary, as it opened it at start. Lines written before stay
//! in the moved file, the rest go to the new one.
//!
//! Write errors: any failed write (a full disk, a quota, a file-size limit,
//! an I/O error) is retried until it succeeds. Meanwhile nothing more is read
//! from the command, whose writes block once the pipe is full: the command is
//! held, not killed, and no line is dropped. psdock says so once on stderr,
//! and again when writes resume.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::archive::{archive_base, create, exists, with_suffix, Compressor, Warn};
use super::pump::Output;
use super::Rotation;

/// How long a failed write waits before it tries again.
const WRITE_RETRY: Duration = Duration::from_millis(250);
/// How often the path is compared with the open file.
const PATH_CHECK: Duration = Duration::from_secs(1);

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

impl From<Errno> for LogError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::ELOOP => LogError::Symlink,
            Errno::ENODEV | Errno::ENXIO => LogError::NotRegular,
            e => LogError::Io(errno_io(e)),
        }
    }
}

/// The live log file, appended to by psdock alone.
pub struct Log {
    path: PathBuf,
    dir: Arc<OwnedFd>,
    name: CString,
    file: OwnedFd,
    /// Device and inode of `file`: the path should lead there.
    id: (u64, u64),
    rotation: Option<Rotation>,
    next: Instant,
    /// The path check's timer, made on first use (inside the runtime).
    check: Option<Interval>,
    /// The last timer to fire was the rotation's.
    rotation_fired: bool,
    /// A rotation is waiting for the end of the current line.
    due: bool,
    /// The path no longer leads to `file`: reopen at the end of the line.
    moved: bool,
    at_line_start: bool,
    /// Bytes went into the live file since it was created or opened.
    written: bool,
    started: SystemTime,
    last_stamp: SystemTime,
    /// Writes are failing (said once).
    stalled: bool,
    /// Rotation and reopening failures, said at most once a minute.
    warn: Warn,
    compressor: Option<Compressor>,
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// What went wrong, without io::Error's "(os error N)".
fn why(e: &LogError) -> String {
    match e {
        LogError::Io(e) => crate::error::plain(e),
        e => e.to_string(),
    }
}

fn id(st: &FileStat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
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
        let dir = nix::fcntl::open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => LogError::NoDir(parent.to_owned()),
            e => LogError::Io(errno_io(e)),
        })?;
        // SAFETY: a descriptor open just returned.
        let dir = unsafe { OwnedFd::from_raw_fd(dir) };
        let name = CString::new(name.as_bytes()).map_err(|e| LogError::Io(e.into()))?;
        let (file, st) = Self::open_live(&dir, &name)?;
        let started = SystemTime::now();
        Ok(Log {
            path: path.to_owned(),
            dir: Arc::new(dir),
            name,
            file,
            id: id(&st),
            rotation,
            next: Instant::now() + rotation.map_or(Duration::ZERO, |r| r.every),
            check: None,
            rotation_fired: false,
            due: false,
            moved: false,
            at_line_start: true,
            written: st.st_size > 0,
            started,
            last_stamp: started,
            stalled: false,
            warn: Warn::default(),
            compressor: None,
        })
    }

    /// Creates `name` in `dir`, or opens it for appending if it exists: never
    /// through a symlink, and only a regular file.
    fn open_live(dir: &OwnedFd, name: &CStr) -> Result<(OwnedFd, FileStat), LogError> {
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND;
        let fd = match create(dir, name, flags) {
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
                fd
            }
            r => r?,
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(LogError::NotRegular);
        }
        Ok((fd, st))
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
                // Every other error holds the command, as a full disk does:
                // killing it would lose its work for want of a log line.
                Err(e) => {
                    if !self.stalled {
                        self.stalled = true;
                        let until = match e {
                            Errno::ENOSPC | Errno::EDQUOT => "space returns",
                            _ => "the log can be written again",
                        };
                        eprintln!(
                            "psdock: {}: {}; the command is held until {until}",
                            self.path.display(),
                            e.desc(),
                        );
                    }
                    tokio::time::sleep(WRITE_RETRY).await;
                    // Deleting the log is how one frees its space: that space
                    // returns only once psdock lets go of the file.
                    if !self.path_leads_to_file() {
                        self.reopen();
                    }
                }
            }
        }
        self.at_line_start = last == b'\n';
        self.written = true;
        Ok(())
    }

    fn path_leads_to_file(&self) -> bool {
        fstatat(
            Some(self.dir.as_raw_fd()),
            self.name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|st| id(&st) == self.id)
    }

    /// Opens the path afresh, the moved or deleted file being no longer the
    /// log. On failure, keeps writing to the file it has and tries again at
    /// the next check.
    fn reopen(&mut self) {
        // A failed reopen waits for the next check, not the next write.
        self.moved = false;
        match Self::open_live(&self.dir, &self.name) {
            Ok((file, st)) => {
                self.file = file;
                self.id = id(&st);
                self.written = st.st_size > 0;
                // A rotation due was for the file that went away.
                self.due = false;
            }
            Err(e) => {
                if self.warn.due() {
                    eprintln!(
                        "psdock: {}: the log was moved or deleted and cannot be opened again ({}); \
                         still writing to the old file",
                        self.path.display(),
                        why(&e)
                    );
                }
            }
        }
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

    /// The compressor, started on first use; it begins with what an
    /// earlier psdock left unfinished.
    fn compressor(&mut self, keep: usize) -> &Compressor {
        let (dir, name, started) = (&self.dir, &self.name, self.started);
        self.compressor
            .get_or_insert_with(|| Compressor::start(dir.clone(), name.clone(), keep, started))
    }

    /// Rotates now, or reopens the path if it no longer leads to the file.
    fn switch(&mut self) {
        if self.moved {
            self.reopen();
        } else {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        self.due = false;
        let Some(rotation) = self.rotation else {
            return;
        };
        // Whatever is at the path, if not our file, is not ours to archive.
        if !self.path_leads_to_file() {
            self.reopen();
            return;
        }
        let base = self.free_name();
        let dir = Some(self.dir.as_raw_fd());
        if let Err(e) = renameat2(
            dir,
            self.name.as_c_str(),
            dir,
            base.as_c_str(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            if self.warn.due() {
                eprintln!(
                    "psdock: {}: cannot rotate: {}",
                    self.path.display(),
                    e.desc()
                );
            }
            return;
        }
        match Self::open_live(&self.dir, &self.name) {
            Ok((file, st)) => {
                self.file = file;
                self.id = id(&st);
                self.written = false;
                self.compressor(rotation.keep).send(base);
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
                if self.warn.due() {
                    eprintln!(
                        "psdock: {}: cannot create a fresh log file ({}); {}",
                        self.path.display(),
                        why(&e),
                        match back {
                            Ok(()) => "rotation skipped".to_owned(),
                            Err(_) => format!(
                                "still writing to {}",
                                std::ffi::OsStr::from_bytes(base.to_bytes()).to_string_lossy()
                            ),
                        }
                    );
                }
            }
        }
    }
}

impl Output for Log {
    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        if self.due || self.moved {
            if self.at_line_start {
                self.switch();
            } else if let Some(i) = memchr::memrchr(b'\n', buf) {
                self.write_retrying(&buf[..=i]).await?;
                buf = &buf[i + 1..];
                self.switch();
            }
        }
        self.write_retrying(buf).await
    }

    async fn timer(&mut self) {
        let rotation_armed = self.rotation.is_some() && !self.due;
        let next = self.next;
        let check = self.check.get_or_insert_with(|| {
            let mut i = tokio::time::interval_at(Instant::now() + PATH_CHECK, PATH_CHECK);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let rotation = async {
            if rotation_armed {
                tokio::time::sleep_until(next).await
            } else {
                std::future::pending().await
            }
        };
        self.rotation_fired = tokio::select! {
            () = rotation => true,
            _ = check.tick() => false,
        };
    }

    fn on_timer(&mut self) {
        if !std::mem::take(&mut self.rotation_fired) {
            if let Some(rotation) = self.rotation {
                // Off the start path: leftovers of an earlier run are
                // finished a second in, or at the first rotation.
                self.compressor(rotation.keep);
            }
            if !self.path_leads_to_file() {
                self.moved = true;
                if self.at_line_start {
                    self.reopen();
                }
            }
            return;
        }
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
