//! The archives of a rotated log: their names, the worker thread that
//! compresses them and applies retention, and the finishing of what a killed
//! psdock left half done.
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

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// The mode of the live log and of the archives, whatever the umask.
pub(super) const MODE: u32 = 0o640;

/// How often a warning that keeps coming back (a rotation that keeps
/// failing) is repeated.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Rate-limits one kind of warning: the first is said, then at most one a
/// minute.
#[derive(Default)]
pub(super) struct Warn(Option<Instant>);

impl Warn {
    pub(super) fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.0.is_some_and(|last| now < last + WARN_EVERY) {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

fn lossy(name: &CStr) -> std::borrow::Cow<'_, str> {
    OsStr::from_bytes(name.to_bytes()).to_string_lossy()
}

pub(super) fn exists(dir: &OwnedFd, name: &CStr) -> bool {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

pub(super) fn is_regular(dir: &OwnedFd, name: &CStr) -> bool {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

/// Creates `name` in `dir` exclusively, never through a symlink, mode 0640
/// whatever the umask.
pub(super) fn create(dir: &OwnedFd, name: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
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

pub(super) fn with_suffix(base: &CStr, suffix: &str) -> CString {
    let mut v = base.to_bytes().to_vec();
    v.extend_from_slice(suffix.as_bytes());
    CString::new(v).expect("no NUL in a file name")
}

/// `<log>.<stamp>` for `t`: the stamp is UTC, `YYYYMMDDTHHMMSS.nnnnnnnnnZ`.
pub(super) fn archive_base(log: &CStr, t: SystemTime) -> CString {
    let rfc3339 = humantime::format_rfc3339_nanos(t).to_string();
    let stamp: String = rfc3339
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    with_suffix(log, &format!(".{stamp}"))
}

/// The three forms of an archive's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<log>.<stamp>`
    Plain,
    /// `<log>.<stamp>.gz`
    Gz,
    /// `<log>.<stamp>.gz.tmp`
    Tmp,
}

/// The stamp and form of `file` if it is exactly one of `log`'s archive names.
fn split_name<'a>(log: &[u8], file: &'a [u8]) -> Option<(&'a [u8], Kind)> {
    let rest = file.strip_prefix(log)?.strip_prefix(b".")?;
    let (stamp, kind) = if let Some(s) = rest.strip_suffix(b".gz.tmp") {
        (s, Kind::Tmp)
    } else if let Some(s) = rest.strip_suffix(b".gz") {
        (s, Kind::Gz)
    } else {
        (rest, Kind::Plain)
    };
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
    ok.then_some((stamp, kind))
}

/// The stamp of `file` if it is exactly `<log>.<stamp>` or `<log>.<stamp>.gz`.
pub fn archive_stamp<'a>(log: &[u8], file: &'a [u8]) -> Option<&'a [u8]> {
    split_name(log, file).and_then(|(stamp, kind)| (kind != Kind::Tmp).then_some(stamp))
}

/// What the compressor thread is asked to do.
enum Job {
    /// Finish what an earlier psdock left, on archives stamped before `before`.
    Recover {
        before: CString,
    },
    Compress(CString),
}

/// The worker thread that compresses rotated files and applies retention,
/// one job at a time, in the order of the rotations.
pub(super) struct Compressor {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Compressor {
    /// Starts the thread; its first job finishes the leftovers of runs
    /// before `started` (this run's rotations all come later).
    pub(super) fn start(dir: Arc<OwnedFd>, log: CString, keep: usize, started: SystemTime) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let before = archive_base(&log, started);
        let _ = tx.send(Job::Recover { before });
        let thread = std::thread::Builder::new()
            .name("psdock-gzip".into())
            .spawn(move || {
                let mut warn = Warn::default();
                for job in rx {
                    match job {
                        Job::Recover { before } => recover(&dir, &log, &before, &mut warn),
                        Job::Compress(base) => compress_or_keep(&dir, &base, &mut warn),
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

    pub(super) fn send(&self, base: CString) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Compress(base));
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

/// Compresses `base`; on failure, says so at most once a minute.
fn compress_or_keep(dir: &OwnedFd, base: &CStr, warn: &mut Warn) {
    if let Err(e) = compress(dir, base) {
        if warn.due() {
            eprintln!("{}", compress_failure(dir, base, &e));
        }
    }
}

/// "kept uncompressed" only if the rotated file is still there: someone may
/// have removed it, which is what made compressing it fail.
fn compress_failure(dir: &OwnedFd, base: &CStr, e: &io::Error) -> String {
    let kept = if is_regular(dir, base) {
        "; kept uncompressed"
    } else {
        ""
    };
    format!("psdock: cannot compress {}: {e}{kept}", lossy(base))
}

/// What a psdock killed in the middle of a rotation leaves next to the log,
/// for archives stamped before `before`: a rotated file not yet compressed
/// (compressed now, or removed if its archive was complete: an archive is
/// renamed into place only once written and synced), and a partial
/// `.gz.tmp` (removed when the rotated file it came from is still there;
/// kept otherwise, since it is then the only copy of those lines).
fn recover(dir: &OwnedFd, log: &CStr, before: &CStr, warn: &mut Warn) {
    let before = &before.to_bytes()[log.to_bytes().len() + 1..];
    let Ok(mut listing) = list(dir) else {
        return;
    };
    let mut plain = Vec::new();
    let mut tmps = Vec::new();
    for entry in listing.iter().filter_map(Result::ok) {
        let name = entry.file_name();
        let Some((stamp, kind)) = split_name(log.to_bytes(), name.to_bytes()) else {
            continue;
        };
        if stamp >= before || !is_regular(dir, name) {
            continue;
        }
        match kind {
            Kind::Plain => plain.push(name.to_owned()),
            Kind::Tmp => tmps.push(name.to_owned()),
            Kind::Gz => {}
        }
    }
    let d = Some(dir.as_raw_fd());
    for tmp in &tmps {
        let bytes = tmp.to_bytes();
        let base = CString::new(&bytes[..bytes.len() - ".gz.tmp".len()]).expect("no NUL");
        if is_regular(dir, &base) {
            let _ = unlinkat(d, tmp.as_c_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
    plain.sort();
    for base in &plain {
        if is_regular(dir, &with_suffix(base, ".gz")) {
            let _ = unlinkat(d, base.as_c_str(), UnlinkatFlags::NoRemoveDir);
        } else {
            compress_or_keep(dir, base, warn);
        }
    }
}

fn list(dir: &OwnedFd) -> nix::Result<nix::dir::Dir> {
    nix::dir::Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
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
    let Ok(mut listing) = list(dir) else {
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
    fn kept_uncompressed_is_said_only_of_a_file_that_was_kept() {
        let d = tempfile::tempdir().unwrap();
        let dir: OwnedFd = File::open(d.path()).unwrap().into();
        let base = c"app.log.20250101T000000.000000001Z";
        let e = compress(&dir, base).unwrap_err();
        assert_eq!(
            compress_failure(&dir, base, &e),
            "psdock: cannot compress app.log.20250101T000000.000000001Z: \
             No such file or directory (os error 2)"
        );
        std::fs::write(d.path().join("app.log.20250101T000000.000000001Z"), "x\n").unwrap();
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(compress_failure(&dir, base, &e).ends_with("; kept uncompressed"));
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
