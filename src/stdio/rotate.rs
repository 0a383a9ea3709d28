//! The log file of a `file://` sink, and its rotation.
//!
//! psdock is the only writer of the live file (the command writes into a pipe),
//! so a rotation is a rename of the live file and the creation of a fresh one
//! between two writes: no line is lost or written twice, and the rotation
//! waits for the end of the line being written, so that every file ends on a
//! line boundary. The renamed file is then compressed by a worker thread, off
//! the writer's path, under a temporary name that is renamed when complete.
//!
//! Names, for a log `app.log` (see README.md, "-log-rotate"):
//! - `app.log.20260102T030405.123456789Z`: a rotated file, until compressed
//!   (and kept as is if compression fails);
//! - `app.log.20260102T030405.123456789Z.gz.tmp`: an archive being written;
//! - `app.log.20260102T030405.123456789Z.gz`: an archive.
//!
//! The UTC timestamp sorts as text, and is made unique per rotation. Only
//! regular files whose names match these patterns exactly are ever renamed
//! onto, compressed or deleted; nothing is created through a symlink.
//!
//! Full disk: a write that fails with ENOSPC or EDQUOT is retried until it
//! succeeds. Meanwhile nothing more is read from the command, whose writes
//! block once the pipe is full: the command is held, not killed, and no line
//! is dropped. psdock says so once on stderr, and again when writes resume.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use tokio::time::Instant;

use super::pump::Output;
use super::Rotation;

/// How long a write waits before it tries again on a full disk.
const FULL_DISK_RETRY: Duration = Duration::from_millis(250);
const MODE: u32 = 0o640;

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

fn exists(dir: &OwnedFd, name: &CStr) -> bool {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

fn is_regular(dir: &OwnedFd, name: &CStr) -> bool {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

/// Creates `name` in `dir` exclusively, never through a symlink, mode 0640
/// whatever the umask.
fn create(dir: &OwnedFd, name: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(MODE),
    )?;
    // SAFETY: a descriptor openat just returned.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(MODE))?;
    Ok(fd)
}

fn with_suffix(base: &CStr, suffix: &str) -> CString {
    let mut v = base.to_bytes().to_vec();
    v.extend_from_slice(suffix.as_bytes());
    CString::new(v).expect("no NUL in a file name")
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

/// `<log>.<stamp>` for `t`: the stamp is UTC, `YYYYMMDDTHHMMSS.nnnnnnnnnZ`.
fn archive_base(log: &CStr, t: SystemTime) -> CString {
    let rfc3339 = humantime::format_rfc3339_nanos(t).to_string();
    let stamp: String = rfc3339
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    with_suffix(log, &format!(".{stamp}"))
}

/// The stamp of `file` if it is exactly `<log>.<stamp>` or `<log>.<stamp>.gz`.
pub fn archive_stamp<'a>(log: &[u8], file: &'a [u8]) -> Option<&'a [u8]> {
    let rest = file.strip_prefix(log)?.strip_prefix(b".")?;
    let stamp = rest.strip_suffix(b".gz").unwrap_or(rest);
    // `0` stands for a digit.
    const SHAPE: &[u8; 26] = b"00000000T000000.000000000Z";
    let ok = stamp.len() == SHAPE.len()
        && stamp.iter().zip(SHAPE).all(|(&c, &s)| {
            if s == b'0' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        });
    ok.then_some(stamp)
}

/// The worker thread that compresses rotated files and applies retention,
/// one job at a time, in the order of the rotations.
struct Compressor {
    jobs: Option<mpsc::Sender<CString>>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    fn start(dir: Arc<OwnedFd>, log: CString, keep: usize) -> Self {
        let (tx, rx) = mpsc::channel::<CString>();
        let thread = std::thread::Builder::new()
            .name("psdock-gzip".into())
            .spawn(move || {
                for base in rx {
                    if let Err(e) = compress(&dir, &base) {
                        eprintln!(
                            "psdock: cannot compress {}: {e}; kept uncompressed",
                            OsStr::from_bytes(base.to_bytes()).to_string_lossy()
                        );
                    }
                    retain(&dir, &log, keep);
                }
            });
        match thread {
            Ok(thread) => Self {
                jobs: Some(tx),
                thread: Some(thread),
            },
            Err(e) => {
                eprintln!(
                    "psdock: cannot start the log compressor: {e}; archives stay uncompressed"
                );
                Self {
                    jobs: None,
                    thread: None,
                }
            }
        }
    }

    fn send(&self, base: CString) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(base);
        }
    }
}

impl Drop for Compressor {
    /// The queued archives are finished before psdock exits.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn compress(dir: &OwnedFd, base: &CStr) -> io::Result<()> {
    use flate2::{write::GzEncoder, Compression};
    let tmp = with_suffix(base, ".gz.tmp");
    let gz = with_suffix(base, ".gz");
    let d = Some(dir.as_raw_fd());
    let result = (|| {
        let src = openat(
            d,
            base,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: a descriptor openat just returned.
        let mut src = unsafe { File::from_raw_fd(src) };
        let dst = File::from(create(dir, &tmp, OFlag::O_WRONLY)?);
        let mut enc = GzEncoder::new(dst, Compression::default());
        io::copy(&mut src, &mut enc)?;
        enc.finish()?.sync_all()?;
        renameat2(
            d,
            tmp.as_c_str(),
            d,
            gz.as_c_str(),
            RenameFlags::RENAME_NOREPLACE,
        )?;
        unlinkat(d, base, UnlinkatFlags::NoRemoveDir)?;
        Ok::<_, io::Error>(())
    })();
    if result.is_err() && is_regular(dir, &tmp) {
        let _ = unlinkat(d, tmp.as_c_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

/// Deletes all but the `keep` newest archives of `log` (compressed or not).
fn retain(dir: &OwnedFd, log: &CStr, keep: usize) {
    let listing = nix::dir::Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let Ok(mut listing) = listing else {
        return;
    };
    let mut archives: Vec<(Vec<u8>, CString)> = listing
        .iter()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let stamp = archive_stamp(log.to_bytes(), name.to_bytes())?.to_vec();
            is_regular(dir, name).then(|| (stamp, name.to_owned()))
        })
        .collect();
    archives.sort();
    let mut stamps: Vec<&[u8]> = archives.iter().map(|(s, _)| s.as_slice()).collect();
    stamps.dedup();
    let Some(&oldest_kept) = stamps
        .iter()
        .rev()
        .nth(keep.saturating_sub(1))
        .filter(|_| keep > 0)
    else {
        return;
    };
    let oldest_kept = oldest_kept.to_vec();
    for (stamp, name) in &archives {
        if *stamp < oldest_kept {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                name.as_c_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_sort_and_match_exactly() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_767_322_245, 123_456_789);
        let base = archive_base(c"app.log", t);
        assert_eq!(base.to_bytes(), b"app.log.20260102T025045.123456789Z");
        let later = archive_base(c"app.log", t + Duration::from_nanos(1));
        assert!(later > base);
        assert_eq!(
            archive_stamp(b"app.log", b"app.log.20260102T025045.123456789Z.gz"),
            Some(&b"20260102T025045.123456789Z"[..])
        );
        assert!(archive_stamp(b"app.log", b"app.log.20260102T025045.123456789Z").is_some());
        for other in [
            &b"other.gz"[..],
            b"app.log2_x.gz",
            b"app.log",
            b"app.log.gz",
            b"app.log.20260102T025045.123456789Z.gz.tmp",
            b"app.log2.20260102T025045.123456789Z.gz",
            b"xapp.log.20260102T025045.123456789Z.gz",
            b"app.log.20260102T025045.12345678Z.gz",
            b"app.log.2026010aT025045.123456789Z.gz",
            b"app.log.20260102T025045.123456789Z.gz.gz",
        ] {
            assert_eq!(
                archive_stamp(b"app.log", other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn the_rotated_file_is_replaced_only_by_a_complete_archive() {
        use std::io::Read;
        let d = tempfile::tempdir().unwrap();
        let base = "app.log.20250101T000000.000000001Z";
        std::fs::write(d.path().join(base), "one\ntwo\n").unwrap();
        // Something that is not ours at the temporary name: creating it fails.
        std::fs::create_dir(d.path().join(format!("{base}.gz.tmp"))).unwrap();
        let dir: OwnedFd = File::open(d.path()).unwrap().into();
        let c = CString::new(base).unwrap();
        assert!(compress(&dir, &c).is_err());
        assert_eq!(
            std::fs::read_to_string(d.path().join(base)).unwrap(),
            "one\ntwo\n"
        );
        assert!(!d.path().join(format!("{base}.gz")).exists());
        assert!(
            d.path().join(format!("{base}.gz.tmp")).is_dir(),
            "not ours to remove"
        );

        std::fs::remove_dir(d.path().join(format!("{base}.gz.tmp"))).unwrap();
        compress(&dir, &c).unwrap();
        assert!(!d.path().join(base).exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(d.path().join(format!("{base}.gz"))).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
    }

    #[test]
    fn retention_keeps_the_newest_and_touches_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let names = [
            "app.log.20250101T000000.000000001Z.gz",
            "app.log.20250101T000000.000000002Z",
            "app.log.20250101T000000.000000003Z.gz",
            "app.log.20250101T000000.000000004Z.gz",
            "other.gz",
            "app.log2_x.gz",
            "app.log",
        ];
        for n in names {
            std::fs::write(d.path().join(n), n).unwrap();
        }
        std::os::unix::fs::symlink(
            "/etc/passwd",
            d.path().join("app.log.20240101T000000.000000000Z.gz"),
        )
        .unwrap();
        let dir: OwnedFd = File::open(d.path()).unwrap().into();
        retain(&dir, c"app.log", 2);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app.log",
                "app.log.20240101T000000.000000000Z.gz",
                "app.log.20250101T000000.000000003Z.gz",
                "app.log.20250101T000000.000000004Z.gz",
                "app.log2_x.gz",
                "other.gz",
            ]
        );
    }
}
