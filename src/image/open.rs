//! `-image` to layers: tells a directory, an OCI layout and a tarball apart,
//! and unpacks what needs unpacking into the cache, with a progress bar when
//! stderr is a terminal.

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::cache::{Cache, CacheError};
use super::digest::{self, Digesting};
use super::file;
use super::layers::Layers;
use super::oci;
use super::unpack::{self, UnpackError};
use crate::plugin::Whiteouts;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Open(io::Error),
    #[error("not a directory, an OCI image layout or a tarball")]
    Kind,
    #[error("-image-ref {0}: the image is not an OCI image layout")]
    RefWithoutLayout(String),
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {why}", .path.display())]
    NotRegular { path: PathBuf, why: String },
    #[error("stopped by {} while reading the image", crate::signals::name(*.0))]
    Stopped(i32),
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error(
        "blob sha256:{expected} ({what}): digest mismatch, its content hashes to sha256:{actual}"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("blob sha256:{hex} ({what}): {expected} bytes expected, {actual} found")]
    SizeMismatch {
        what: String,
        hex: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer sha256:{hex}: {source}")]
    Unpack { hex: String, source: UnpackError },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("the image has {layers} layers and the rootfs driver stacks at most {max}")]
    TooManyLayers { layers: usize, max: usize },
    #[error("no image for {platform} in the layout (found: {found})")]
    NoPlatform { platform: String, found: String },
    #[error("the layout holds several images: choose one with -image-ref (tags: {0})")]
    Ambiguous(String),
    #[error("the image's {path} is a symlink (to {}): refused, the container's {path} would be mounted where it points (as runc refuses it, CVE-2019-19921)", .target.display())]
    SystemSymlink { path: &'static str, target: PathBuf },
    #[error("-image-ref {name}: no such tag in the layout (tags: {known})")]
    NoRef { name: String, known: String },
}

/// The run configuration an OCI image carries; empty for a directory or a tarball.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Docker's `Healthcheck`, when the config carries one.
    pub healthcheck: Option<ImageHealthcheck>,
}

/// Docker's `Healthcheck` as an image config holds it: `test` is `["NONE"]`,
/// `["CMD", ...]` or `["CMD-SHELL", CMD]` (empty: none set); a time or count
/// left at zero means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageHealthcheck {
    pub test: Vec<String>,
    pub interval: Option<std::time::Duration>,
    pub timeout: Option<std::time::Duration>,
    pub start_period: Option<std::time::Duration>,
    pub retries: Option<u32>,
}

/// What the run needs from the image.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Layers,
    pub config: ImageConfig,
}

/// How to open the image: what the user asked for, and what the rootfs driver
/// can stack.
pub struct Options<'a> {
    pub image_ref: Option<&'a str>,
    pub form: Whiteouts,
    pub max_layers: usize,
    pub cache: &'a Cache,
}

/// Opens the image at `path` (canonical), unpacking into the cache what is not
/// there yet. A SIGINT or SIGTERM meanwhile stops it ([`ImageError::Stopped`]),
/// the cache left as it was.
pub fn open(path: &Path, opts: &Options) -> Result<Image, ImageError> {
    // Whatever failed, a pending stop is the reason to give: the read that
    // noticed it failed on its account, and nothing else matters any more.
    opened(path, opts).map_err(|e| match crate::signals::stop_pending() {
        Some(sig) => ImageError::Stopped(sig),
        None => e,
    })
}

fn opened(path: &Path, opts: &Options) -> Result<Image, ImageError> {
    let meta = std::fs::metadata(path).map_err(ImageError::Open)?;
    let (dirs, config) = if meta.is_dir() && path.join("oci-layout").exists() {
        oci::open(path, opts)?
    } else {
        if let Some(name) = opts.image_ref {
            return Err(ImageError::RefWithoutLayout(name.to_owned()));
        }
        if meta.is_dir() {
            (vec![path.to_owned()], ImageConfig::default())
        } else if meta.is_file() {
            (vec![tarball(path, opts)?], ImageConfig::default())
        } else {
            return Err(ImageError::Kind);
        }
    };
    let layers = Layers {
        dirs,
        form: opts.form,
    };
    // The container's /proc, /sys and /dev are mounted by path: through a
    // symlink they would land elsewhere in the rootfs, out of reach of the
    // masking (and /dev's nodes would shadow a directory of the image's).
    for path in ["/proc", "/sys", "/dev"] {
        if let Some(target) = layers.symlink_target(Path::new(path)) {
            return Err(ImageError::SystemSymlink { path, target });
        }
    }
    Ok(Image { layers, config })
}

/// A root file system tarball is one layer, keyed by the digest of the file.
/// Each pass opens it anew and reads no more than its size then.
fn tarball(path: &Path, opts: &Options) -> Result<PathBuf, ImageError> {
    let read = |source| ImageError::Read {
        path: path.to_owned(),
        source,
    };
    let (file, size) = file::open_tarball(path)?;
    if !unpack::is_tar(file.take(size)) {
        return Err(ImageError::Kind);
    }
    let (file, size) = file::open_tarball(path)?;
    let hex = digest::of_reader(file.take(size)).map_err(read)?;
    let bar = progress(if opts.cache.has(opts.form, &hex) {
        0
    } else {
        size
    });
    let dir = opts.cache.layer(opts.form, &hex, |tmp| {
        let (file, size) = file::open_tarball(path)?;
        unpack_verified(file.take(size), tmp, opts.form, &bar, "tarball", &hex).map(drop)
    });
    bar.finish_and_clear();
    dir
}

/// Unpacks `blob` into `dir` and checks it against its digest: a mismatch is
/// reported as such even when it made the unpacking itself fail. Returns the
/// digest of the uncompressed tar.
pub(super) fn unpack_verified(
    blob: impl io::Read,
    dir: &Path,
    form: Whiteouts,
    bar: &ProgressBar,
    what: &str,
    hex: &str,
) -> Result<(String, u64), ImageError> {
    let mut blob = Digesting::new(blob, bar.clone());
    let unpacked = unpack::unpack(&mut blob, dir, form);
    let (actual, size) = blob.finish().map_err(|e| ImageError::Unpack {
        hex: hex.to_owned(),
        source: UnpackError::Read(e),
    })?;
    if actual != hex {
        return Err(ImageError::DigestMismatch {
            what: what.to_owned(),
            expected: hex.to_owned(),
            actual,
        });
    }
    let unpacked = unpacked.map_err(|source| ImageError::Unpack {
        hex: hex.to_owned(),
        source,
    })?;
    if !unpacked.devices.is_empty() {
        bar.suspend(|| {
            eprintln!(
                "psdock: {what} sha256:{hex}: device nodes skipped, containers may not use them: {}",
                unpacked.devices.join(", ")
            )
        });
    }
    Ok((unpacked.diff_id, size))
}

/// A bar over `total` bytes on a terminal; nothing at all elsewhere, or when
/// there is nothing to unpack.
pub(super) fn progress(total: u64) -> ProgressBar {
    if total == 0 || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("psdock: unpacking {wide_bar} {bytes}/{total_bytes}")
            .expect("a valid template"),
    );
    bar.tick();
    bar
}
