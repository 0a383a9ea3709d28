//! One layer, a tar stream (plain, gzip or zstd), unpacked into a directory of
//! its own, with its whiteouts in the form the rootfs driver reads.
//!
//! Entries are refused, not skipped, when they could write outside the layer:
//! `..` in a path or a hard link's target, an absolute path, a path whose parent
//! leads out through a symlink. (Symlinks themselves may point anywhere: they
//! are resolved inside the container, never here.) The tar crate writes the
//! files; it makes the same checks again.
//!
//! Character and block devices are skipped, and the caller is told which: a
//! node made here would be a host device on the host's file system (the
//! layer cache), and in the container it could not be opened anyway.

use std::cell::Cell;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use indicatif::ProgressBar;

use super::digest::Digesting;
use crate::fsutil::{self, Create};
use crate::plugin::Whiteouts;

/// The prefix of a whiteout: `.wh.NAME` deletes NAME from the layers below.
const WHITEOUT: &[u8] = b".wh.";
/// In a directory, hides everything the layers below have in it.
const OPAQUE: &[u8] = b".wh..wh..opq";
/// aufs' own bookkeeping (`.wh..wh.plnk`, ...); nothing for overlay.
const AUFS_META: &[u8] = b".wh..wh.";
/// Marks a directory opaque for overlay, in the lower layers as in the upper.
const OVERLAY_OPAQUE: &std::ffi::CStr = c"trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing entry `{entry}`: {why}")]
    Hostile { entry: String, why: &'static str },
    #[error("entry `{entry}`: {}", chain(.source))]
    Entry { entry: String, source: io::Error },
    #[error("cannot read the archive: {0}")]
    Read(io::Error),
}

/// What a layer became.
#[derive(Debug)]
pub struct Unpacked {
    /// The sha256 of the uncompressed tar stream (an OCI layer's diff id).
    pub diff_id: String,
    /// The device nodes it had, left out: their paths in the layer.
    pub devices: Vec<String>,
}

/// Unpacks `blob` into the empty directory `dir`.
pub fn unpack(blob: impl Read, dir: &Path, form: Whiteouts) -> Result<Unpacked, UnpackError> {
    let tar = decompressed(blob).map_err(UnpackError::Read)?;
    let data_end = Rc::new(Cell::new(0));
    let mut archive = tar::Archive::new(Unterminated {
        inner: Digesting::new(tar, ProgressBar::hidden()),
        pos: 0,
        data_end: data_end.clone(),
        zeros: 0,
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let root = File::open(dir).map_err(|source| UnpackError::Entry {
        entry: ".".into(),
        source,
    })?;
    let mut devices = Vec::new();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        data_end.set(
            // Saturating: the size is the archive's to claim.
            entry
                .raw_file_position()
                .saturating_add(entry.header().entry_size().unwrap_or(0)),
        );
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let on_entry = |source| UnpackError::Entry {
            entry: name.clone(),
            source,
        };
        let rel = inside(&raw).map_err(|why| UnpackError::Hostile {
            entry: name.clone(),
            why,
        })?;
        let Some(file_name) = rel.file_name().map(|n| n.as_bytes().to_owned()) else {
            set_owner_and_mode(dir, entry.header()).map_err(on_entry)?;
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() {
            devices.push(name);
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        if form == Whiteouts::Overlay && file_name.starts_with(WHITEOUT) {
            whiteout(&root, parent, &file_name).map_err(on_entry)?;
            continue;
        }
        if entry.header().entry_type().is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            inside(&target).map_err(|why| UnpackError::Hostile {
                entry: name.clone(),
                why,
            })?;
        }
        match fsutil::open_beneath(&root, parent) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                return Err(UnpackError::Hostile {
                    entry: name,
                    why: "its directory leads out of the layer through a symlink",
                })
            }
            // Missing parents are made by the tar crate, below `dir` only.
            _ => {}
        }
        let xattrs = xattrs(&mut entry).map_err(on_entry)?;
        if !entry.unpack_in(dir).map_err(on_entry)? {
            return Err(UnpackError::Hostile {
                entry: name,
                why: "it would be written outside the layer",
            });
        }
        let path = dir.join(&rel);
        for (key, value) in xattrs {
            set_xattr(&path, &key, &value, false).map_err(on_entry)?;
        }
    }
    let digest = archive
        .into_inner()
        .inner
        .finish()
        .map_err(UnpackError::Read)?;
    Ok(Unpacked {
        diff_id: digest.0,
        devices,
    })
}

/// The tar crate wraps the io error that says what went wrong in one that
/// says where: show both.
fn chain(e: &io::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// umoci 0.4 (Debian 12's) ends a layer right after its last file's data, with
/// neither the padding to 512 bytes nor the end-of-archive blocks. Go's
/// archive/tar, which docker and containerd use, reads an end of input exactly
/// there as the end of the archive; so does this reader, by supplying the
/// missing zeros. An end anywhere else is still an error.
struct Unterminated<R> {
    inner: R,
    /// Bytes handed to the tar reader so far.
    pos: u64,
    /// Where the data of the entry being read ends.
    data_end: Rc<Cell<u64>>,
    /// Zeros still to supply after such an end.
    zeros: u64,
}

impl<R: Read> Read for Unterminated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.zeros == 0 {
            let n = self.inner.read(buf)?;
            if n > 0
                || buf.is_empty()
                || self.pos != self.data_end.get()
                || self.pos.is_multiple_of(512)
            {
                self.pos += n as u64;
                return Ok(n);
            }
            self.zeros = 512 - self.pos % 512 + 1024;
        }
        let n = buf.len().min(self.zeros as usize);
        buf[..n].fill(0);
        self.zeros -= n as u64;
        self.pos += n as u64;
        if self.zeros == 0 {
            self.data_end.set(u64::MAX); // once only
        }
        Ok(n)
    }
}

/// The tar stream in `blob`: plain, gzip or zstd, told apart by their magic.
fn decompressed<'a>(blob: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut blob = BufReader::with_capacity(64 * 1024, blob);
    let magic = blob.fill_buf()?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(blob))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(ruzstd::decoding::StreamingDecoder::new(blob).map_err(io::Error::other)?)
    } else {
        Box::new(blob)
    })
}

/// Whether `file` starts with a tar header (after decompression): a cheap
/// look before a file given as `-image` is taken for a tarball.
pub fn is_tar(file: impl Read) -> bool {
    let mut block = [0u8; 512];
    let Ok(mut tar) = decompressed(file) else {
        return false;
    };
    if tar.read_exact(&mut block).is_err() {
        return false;
    }
    let header = tar::Header::from_byte_slice(&block);
    // The checksum counts its own field as spaces; an all-zero block (an
    // empty archive) has a stored checksum of nothing.
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                0x20
            } else {
                u32::from(b)
            }
        })
        .sum();
    header.cksum().is_ok_and(|stored| stored == sum)
}

/// The entry's path relative to the layer, or why it is refused. Only the
/// layer's root itself may be written as `/` (umoci does).
fn inside(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let path = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut rel = PathBuf::new();
    let mut absolute = false;
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains `..`"),
            Component::Normal(part) => rel.push(part),
        }
    }
    if absolute && !rel.as_os_str().is_empty() {
        return Err("its path is absolute");
    }
    Ok(rel)
}

/// Deletes `name` from the layers below: a 0/0 character device in its place,
/// or, for the opaque marker, an xattr on the directory.
fn whiteout(root: &File, parent: &Path, name: &[u8]) -> io::Result<()> {
    let dir = fsutil::open_in_root(root, parent, Create::Dir)?;
    if name == OPAQUE {
        let path = proc_fd(&dir);
        return set_xattr(&path, OVERLAY_OPAQUE, b"y", true);
    }
    if name.starts_with(AUFS_META) {
        return Ok(());
    }
    let target = CString::new(&name[WHITEOUT.len()..])?;
    // SAFETY (both calls): a valid directory descriptor and C string.
    let mknod = || unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            target.as_ptr(),
            libc::S_IFCHR,
            libc::makedev(0, 0),
        )
    };
    if mknod() == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EEXIST) {
        return Err(err);
    }
    // The layer also has the name itself: the whiteout, later, wins.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), target.as_ptr(), 0) } != 0
        && unsafe { libc::unlinkat(dir.as_raw_fd(), target.as_ptr(), libc::AT_REMOVEDIR) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    if mknod() != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path of an `O_PATH` descriptor's file, for the calls that need a path.
fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// xattrs from the entry's pax header that are safe to carry over: `user.*`
/// and file capabilities. `trusted.*` (overlay's own, among others) would let a
/// layer steer the host's overlay mount, and `security.*` labels belong to the host.
fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for ext in extensions {
        let ext = ext?;
        let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if key.starts_with(b"user.") || key == b"security.capability" {
            out.push((CString::new(key)?, ext.value_bytes().to_owned()));
        }
    }
    Ok(out)
}

fn set_xattr(path: &Path, key: &std::ffi::CStr, value: &[u8], follow: bool) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let set = if follow {
        libc::setxattr
    } else {
        libc::lsetxattr
    };
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        set(
            c.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The layer's root takes the mode and owner its archive gives `/` or `./`.
fn set_owner_and_mode(dir: &Path, header: &tar::Header) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (uid, gid) = (header.uid()?, header.gid()?);
    let id = |v: u64| u32::try_from(v).map_err(io::Error::other);
    std::os::unix::fs::chown(dir, Some(id(uid)?), Some(id(gid)?))?;
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode(header.mode()? & 0o7777),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::super::raw_tar::archive;
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

    #[test]
    fn files_and_root_mode_are_unpacked_and_the_diff_id_is_the_tar_digest() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("./", D, ""), ("etc/", D, ""), ("etc/hosts", F, "x\n")]);
        let diff = unpack(&tar[..], dir.path(), Whiteouts::Overlay)
            .unwrap()
            .diff_id;
        assert_eq!(diff, super::super::digest::of_bytes(&tar));
        assert_eq!(std::fs::read(dir.path().join("etc/hosts")).unwrap(), b"x\n");
        let mode = std::fs::metadata(dir.path()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn an_archive_cut_right_after_its_last_data_ends_there_and_nowhere_else() {
        let full = archive(&[("d/", D, ""), ("d/f", F, "data"), ("g", F, "more!")]);
        // As umoci 0.4 writes it: the last file's 5 bytes, then nothing.
        let cut = &full[..512 * 4 + 5];
        let dir = tempfile::tempdir().unwrap();
        let diff = unpack(cut, dir.path(), Whiteouts::Overlay).unwrap().diff_id;
        assert_eq!(diff, super::super::digest::of_bytes(cut));
        assert_eq!(std::fs::read(dir.path().join("g")).unwrap(), b"more!");
        // Cut inside the data: an error, not a file padded with zeros.
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&full[..512 * 4 + 3], dir.path(), Whiteouts::Overlay).is_err());
        // Cut inside the padding: an error too, as in Go's reader.
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack(&full[..512 * 4 + 7], dir.path(), Whiteouts::Overlay).is_err());
    }

    #[test]
    fn a_tar_is_told_from_other_files() {
        let tar = archive(&[("a", F, "x")]);
        assert!(is_tar(&tar[..]));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        assert!(is_tar(&gz.finish().unwrap()[..]));
        assert!(!is_tar(&b"not an image"[..]));
        assert!(!is_tar(&[0u8; 1024][..]));
        assert!(!is_tar(&b""[..]));
    }

    #[test]
    fn gzip_and_zstd_are_told_apart_by_their_magic() {
        let tar = archive(&[("a", F, "gz or zst")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            unpack(&gz[..], dir.path(), Whiteouts::Overlay)
                .unwrap()
                .diff_id,
            super::super::digest::of_bytes(&tar)
        );
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"gz or zst");
        // zstd (made by the zstd tool, which skopeo uses too) is tested end to
        // end in the integration tests; a corrupt frame is an error here.
        let dir = tempfile::tempdir().unwrap();
        let bad = [0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff];
        assert!(unpack(&bad[..], dir.path(), Whiteouts::Overlay).is_err());
    }

    #[test]
    fn whiteouts_become_overlay_devices_and_opaque_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[
            ("data/.wh.gone", F, ""),
            ("opq/.wh..wh..opq", F, ""),
            ("opq/", D, ""),
            ("opq/new", F, "new"),
            ("x/.wh..wh.plnk", F, ""),
        ]);
        unpack(&tar[..], dir.path(), Whiteouts::Overlay).unwrap();
        let gone = std::fs::symlink_metadata(dir.path().join("data/gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert!(!dir.path().join("data/.wh.gone").exists());
        let mut value = [0u8; 8];
        let c = CString::new(dir.path().join("opq").as_os_str().as_bytes()).unwrap();
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                OVERLAY_OPAQUE.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert_eq!(&value[..n as usize], b"y");
        assert!(!dir.path().join("opq/.wh..wh..opq").exists());
        assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
    }

    #[test]
    fn device_nodes_are_skipped_and_named() {
        use tar::EntryType::{Block, Char, Fifo};
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[
            ("dev/", D, ""),
            ("dev/sda", Block, ""),
            ("dev/mem", Char, ""),
            ("dev/fifo", Fifo, ""),
            ("etc/hosts", F, "x\n"),
        ]);
        let unpacked = unpack(&tar[..], dir.path(), Whiteouts::Overlay).unwrap();
        assert_eq!(unpacked.devices, ["dev/sda", "dev/mem"]);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("dev"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        // The FIFO stays (the tar crate writes it as an empty file, as before).
        assert_eq!(names, ["fifo"]);
        assert!(dir.path().join("etc/hosts").is_file());
    }

    #[test]
    fn aufs_keeps_the_oci_form() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[("data/.wh.gone", F, ""), ("opq/.wh..wh..opq", F, "")]);
        unpack(&tar[..], dir.path(), Whiteouts::Aufs).unwrap();
        assert!(dir.path().join("data/.wh.gone").is_file());
        assert!(dir.path().join("opq/.wh..wh..opq").is_file());
    }

    #[test]
    fn escaping_entries_are_refused_and_nothing_lands_outside() {
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path().to_str().unwrap();
        let abs_target = format!("{out}/pwned");
        for (entries, why) in [
            (vec![("../pwned", F, "x")], "its path contains `..`"),
            (vec![("a/../../pwned", F, "x")], "its path contains `..`"),
            (vec![(abs_target.as_str(), F, "x")], "its path is absolute"),
            (
                vec![("link", S, out), ("link/pwned", F, "x")],
                "its directory leads out of the layer through a symlink",
            ),
            (
                vec![("up", S, "../../../../../../.."), ("up/tmp/pwned", F, "x")],
                "its directory leads out of the layer through a symlink",
            ),
            (
                vec![("hard", H, "../../etc/passwd")],
                "its path contains `..`",
            ),
            (vec![("hard", H, "/etc/passwd")], "its path is absolute"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let tar = archive(&entries);
            match unpack(&tar[..], dir.path(), Whiteouts::Overlay) {
                Err(UnpackError::Hostile { why: w, .. }) => assert_eq!(w, why, "{entries:?}"),
                other => panic!("{entries:?}: {other:?}"),
            }
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn symlinks_may_point_anywhere_and_links_inside_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(&[
            ("bin/", D, ""),
            ("bin/busybox", F, "elf"),
            ("bin/sh", S, "/bin/busybox"),
            ("bin/ash", H, "bin/busybox"),
            ("usr/lib", S, "../lib"),
        ]);
        unpack(&tar[..], dir.path(), Whiteouts::Overlay).unwrap();
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(std::fs::read(dir.path().join("bin/ash")).unwrap(), b"elf");
    }
}
