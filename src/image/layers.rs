//! The layers of one image as the container will see them: a file is the
//! top-most layer's that has it, unless a layer above deletes it (a whiteout)
//! or hides its directory (opaque). psdock reads a few files this way before
//! anything is mounted (`/etc/passwd`, `/etc/group`).

use std::ffi::CString;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::fsutil;
use crate::plugin::Whiteouts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Read-only layer directories, the top one first.
    pub dirs: Vec<PathBuf>,
    /// How these layers mark deletions.
    pub form: Whiteouts,
}

/// What one layer says about a path.
enum Verdict {
    /// The layer has it.
    Here,
    /// The layer deletes it, or hides a directory on the way: not below either.
    Hidden,
    /// The layer does not have it: look below.
    Below,
}

impl Layers {
    /// Opens `path` (absolute or not, taken inside the image) in the union,
    /// to read at most `max` bytes (see [`fsutil::open_in_root_regular`]).
    /// Symlinks resolve inside the layer that holds the file.
    pub fn open(&self, path: &Path, max: u64) -> io::Result<io::Take<std::fs::File>> {
        match self.find(path) {
            Some(layer) => fsutil::open_in_root_regular(layer, path, max),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Whether `path` is a directory in the union.
    pub fn is_dir(&self, path: &Path) -> bool {
        self.find(path).is_some_and(|layer| {
            std::fs::metadata(layer.join(relative(path))).is_ok_and(|m| m.is_dir())
        })
    }

    /// Where `path` points when it is a symlink in the union.
    pub fn symlink_target(&self, path: &Path) -> Option<PathBuf> {
        let layer = self.find(path)?;
        std::fs::read_link(layer.join(relative(path))).ok()
    }

    fn find(&self, path: &Path) -> Option<&Path> {
        let rel = relative(path);
        for (i, dir) in self.dirs.iter().enumerate() {
            let bottom = i + 1 == self.dirs.len();
            match self.verdict(dir, &rel, bottom) {
                Verdict::Here => return Some(dir),
                Verdict::Hidden => return None,
                Verdict::Below => {}
            }
        }
        None
    }

    /// `bottom`: no layer lies below this one, so nothing it has can hide one.
    fn verdict(&self, layer: &Path, rel: &Path, bottom: bool) -> Verdict {
        let parts: Vec<_> = rel.components().collect();
        let mut at = layer.to_path_buf();
        // An opaque directory on the way: what this layer lacks below it, the
        // layers below cannot supply.
        let mut hides_below = false;
        for (i, part) in parts.iter().enumerate() {
            let found = std::fs::symlink_metadata(at.join(part));
            if self.deletes(&at, part.as_os_str(), found.as_ref().ok()) {
                return Verdict::Hidden;
            }
            at.push(part);
            match found {
                Err(_) if hides_below => return Verdict::Hidden,
                Err(_) => return Verdict::Below,
                Ok(_) if i + 1 == parts.len() => return Verdict::Here,
                // A file or symlink in the way: resolved in this layer alone.
                Ok(m) if !m.is_dir() => return Verdict::Here,
                Ok(_) => hides_below |= !bottom && self.opaque(&at),
            }
        }
        Verdict::Here
    }

    /// Whether the directory `dir` of a layer deletes `name` from the layers
    /// below; `found` is what the layer has at `name`, if anything.
    fn deletes(&self, dir: &Path, name: &std::ffi::OsStr, found: Option<&Metadata>) -> bool {
        match self.form {
            Whiteouts::Overlay => {
                found.is_some_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
            }
            Whiteouts::Aufs => {
                let mut wh = std::ffi::OsString::from(".wh.");
                wh.push(name);
                std::fs::symlink_metadata(dir.join(wh)).is_ok()
            }
        }
    }

    /// Whether a layer's directory hides what the layers below have in it.
    fn opaque(&self, dir: &Path) -> bool {
        match self.form {
            Whiteouts::Overlay => {
                let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
                    return false;
                };
                let mut value = [0u8; 1];
                // SAFETY: a valid C string and a buffer of the given length.
                let n = unsafe {
                    libc::lgetxattr(
                        c.as_ptr(),
                        c"trusted.overlay.opaque".as_ptr(),
                        value.as_mut_ptr().cast(),
                        value.len(),
                    )
                };
                n == 1 && value[0] == b'y'
            }
            Whiteouts::Aufs => dir.join(".wh..wh..opq").exists(),
        }
    }
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three layers, bottom to top, in both forms, as an unpacked image has them.
    fn image(form: Whiteouts) -> (tempfile::TempDir, Layers) {
        let t = tempfile::tempdir().unwrap();
        let [base, mid, top] = ["base", "mid", "top"].map(|l| t.path().join(l));
        for (layer, files) in [
            (
                &base,
                &["etc/passwd", "etc/group", "opq/old", "data/gone"][..],
            ),
            (&mid, &["etc/passwd"][..]),
            (&top, &["opq/new"][..]),
        ] {
            for f in files {
                let p = layer.join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, format!("{f} from {}", layer.display())).unwrap();
            }
        }
        std::fs::create_dir_all(top.join("data")).unwrap();
        match form {
            Whiteouts::Overlay => {
                let dev = CString::new(top.join("data/gone").as_os_str().as_bytes()).unwrap();
                assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR, 0) }, 0);
                let opq = CString::new(top.join("opq").as_os_str().as_bytes()).unwrap();
                let r = unsafe {
                    libc::setxattr(
                        opq.as_ptr(),
                        c"trusted.overlay.opaque".as_ptr(),
                        b"y".as_ptr().cast(),
                        1,
                        0,
                    )
                };
                assert_eq!(r, 0, "{}", io::Error::last_os_error());
            }
            Whiteouts::Aufs => {
                std::fs::write(top.join("data/.wh.gone"), b"").unwrap();
                std::fs::write(top.join("opq/.wh..wh..opq"), b"").unwrap();
            }
        }
        let layers = Layers {
            dirs: vec![top, mid.clone(), base],
            form,
        };
        (t, layers)
    }

    #[test]
    fn the_union_honours_order_whiteouts_and_opaque_directories() {
        for form in [Whiteouts::Overlay, Whiteouts::Aufs] {
            let (_t, layers) = image(form);
            let text = |p: &str| {
                let mut text = String::new();
                let mut file = layers.open(Path::new(p), 1 << 20).unwrap();
                io::Read::read_to_string(&mut file, &mut text).unwrap();
                text
            };
            assert!(text("/etc/passwd").ends_with("/mid"), "{form:?}");
            assert!(text("etc/group").ends_with("/base"), "{form:?}");
            assert!(text("/opq/new").ends_with("/top"), "{form:?}");
            for hidden in ["/data/gone", "/opq/old", "/nowhere"] {
                let e = layers.open(Path::new(hidden), 1 << 20).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::NotFound, "{form:?} {hidden}");
            }
            assert!(layers.is_dir(Path::new("/etc")));
            assert!(!layers.is_dir(Path::new("/etc/passwd")));
            assert!(!layers.is_dir(Path::new("/data/gone")));
        }
    }
}
