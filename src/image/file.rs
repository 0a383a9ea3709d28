//! The files of an image, read as an attacker may have laid them out: regular
//! files only (a blob that is a symlink to /dev/zero, a FIFO or a device would
//! feed or hold psdock without end), no symlink followed inside an OCI layout,
//! every read bounded by the size the descriptor claims, and SIGINT/SIGTERM
//! noticed while a layer streams by (see [`Digesting`]).
//!
//! [`Digesting`]: super::digest::Digesting

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::open::ImageError;
use crate::fsutil;

/// An OCI image layout's directory, its files opened beneath it.
pub struct LayoutDir {
    dir: File,
    path: PathBuf,
}

impl LayoutDir {
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let dir = fsutil::open_dir(path).map_err(|e| ImageError::Read {
            path: path.to_owned(),
            source: e.into(),
        })?;
        Ok(Self {
            dir: File::from(dir),
            path: path.to_owned(),
        })
    }

    /// The regular file `rel` of the layout, and its size, or why not.
    pub fn file(&self, rel: &Path) -> Result<(File, u64), ImageError> {
        fsutil::open_regular_beneath(&self.dir, rel).map_err(|e| {
            let path = self.path.join(rel);
            match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::EXDEV) => ImageError::NotRegular {
                    path,
                    why: "a symlink, and the files of an image layout are read as they are, \
                          never through a link"
                        .into(),
                },
                _ if e.kind() == io::ErrorKind::InvalidInput => ImageError::NotRegular {
                    path,
                    why: e.to_string(),
                },
                _ => ImageError::Read { path, source: e },
            }
        })
    }

    /// The whole of the small file `rel`, refused unread when larger than `max`.
    pub fn read(&self, rel: &Path, max: u64) -> Result<Vec<u8>, ImageError> {
        let (file, size) = self.file(rel)?;
        if size > max {
            return Err(ImageError::Invalid {
                what: self.path.join(rel).display().to_string(),
                why: format!("{size} bytes is too large (at most {max})"),
            });
        }
        read_exactly(file, size).map_err(|source| ImageError::Read {
            path: self.path.join(rel),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `size` bytes of `file`, no more: a file that grew since its size was
/// taken is read no further.
pub fn read_exactly(file: File, size: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The rootfs tarball given as `-image`: a regular file (the path is the
/// user's, canonical, so symlinks on the way were the user's to follow), and
/// its size.
pub fn open_tarball(path: &Path) -> Result<(File, u64), ImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let read = |source| ImageError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read)?;
    let size = fsutil::regular_size(&file).map_err(read)?;
    Ok((file, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_no_links_are_opened_in_a_layout() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("real"), b"{}").unwrap();
        std::os::unix::fs::symlink("/dev/zero", t.path().join("zero")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("inside")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let layout = LayoutDir::open(t.path()).unwrap();
        assert_eq!(layout.read(Path::new("real"), 2).unwrap(), b"{}");
        let big = layout.read(Path::new("real"), 1).unwrap_err().to_string();
        assert!(big.ends_with("2 bytes is too large (at most 1)"), "{big}");
        for link in ["zero", "inside"] {
            let e = layout.file(Path::new(link)).unwrap_err().to_string();
            assert!(e.contains(": a symlink, and the files"), "{e}");
        }
        let e = layout.file(Path::new("fifo")).unwrap_err().to_string();
        assert!(e.ends_with("fifo: a FIFO, not a regular file"), "{e}");
    }
}
