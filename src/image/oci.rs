//! An OCI image layout (as skopeo, umoci, buildah or `docker save` write it):
//! the manifest for this platform, found through `index.json` (and nested
//! indexes), every blob read checked against its digest and size, each layer
//! unpacked into the cache, and the config's run settings.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os,
};
use serde::de::DeserializeOwned;

use indicatif::ProgressBar;

use super::digest;
use super::file::{read_exactly, LayoutDir};
use super::open::{progress, unpack_verified, ImageConfig, ImageError, Options};

/// Where tools put the tag of a manifest in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Manifests and configs are small; a huge one is not worth reading into memory.
const MAX_JSON: u64 = 4 << 20;
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn invalid(what: impl Into<String>, why: impl ToString) -> ImageError {
    ImageError::Invalid {
        what: what.into(),
        why: why.to_string(),
    }
}

/// How many descriptors the indexes of one layout may hold, all levels
/// together: nested indexes may name the same index many times over, and
/// each name is a read (4 levels of 4 MiB indexes would be 10^18 of them).
/// Real layouts hold a few per platform.
const MAX_DESCRIPTORS: usize = 4096;

/// The layer directories (top first) and the run configuration.
pub fn open(path: &Path, opts: &Options) -> Result<(Vec<PathBuf>, ImageConfig), ImageError> {
    let layout = &LayoutDir::open(path)?;
    let index: ImageIndex = json_file(layout, Path::new("index.json"))?;
    let manifest = choose(layout, &index, opts.image_ref)?;
    let manifest: ImageManifest = blob_json(layout, &manifest, "manifest")?;
    let bytes = blob_bytes(layout, manifest.config(), "config")?;
    let config: ImageConfiguration = parse_blob(&bytes, manifest.config(), "config")?;
    if *config.os() != Os::Linux || *config.architecture() != Arch::default() {
        return Err(invalid(
            "config",
            format!(
                "the image is for {}/{}, this host is {}",
                config.os(),
                config.architecture(),
                platform()
            ),
        ));
    }
    let layers = manifest.layers();
    let diff_ids = config.rootfs().diff_ids();
    if layers.len() != diff_ids.len() {
        return Err(invalid(
            "manifest",
            format!(
                "{} layers, but the config lists {} diff ids",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    if layers.len() > opts.max_layers {
        return Err(ImageError::TooManyLayers {
            layers: layers.len(),
            max: opts.max_layers,
        });
    }
    for layer in layers {
        check_layer_type(layer)?;
    }
    // Sizes come from the manifest: added up checked, not trusted to fit.
    let todo = layers
        .iter()
        .filter(|l| !opts.cache.has(opts.form, hex(l).unwrap_or_default()))
        .try_fold(0u64, |sum, l| sum.checked_add(l.size()))
        .ok_or_else(|| {
            invalid(
                "manifest",
                "the sizes of its layers add up to more than 2^64",
            )
        })?;
    let bar = progress(todo);
    let mut dirs = Vec::with_capacity(layers.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        dirs.push(unpack_layer(layout, layer, diff_id, opts, &bar)?);
    }
    bar.finish_and_clear();
    dirs.reverse();
    let mut run = run_config(&config);
    // Docker's, which the OCI config type does not know: read only from a
    // config that names it, so that others are not parsed twice.
    const KEY: &[u8] = b"\"Healthcheck\"";
    if bytes.windows(KEY.len()).any(|w| w == KEY) {
        run.healthcheck = parse_blob::<Docker>(&bytes, manifest.config(), "config")?
            .config
            .and_then(|c| c.healthcheck)
            .map(Into::into);
    }
    Ok((dirs, run))
}

fn unpack_layer(
    layout: &LayoutDir,
    layer: &Descriptor,
    diff_id: &str,
    opts: &Options,
    bar: &ProgressBar,
) -> Result<PathBuf, ImageError> {
    let hex = hex(layer)?;
    opts.cache.layer(opts.form, hex, |tmp| {
        // Read no further than the manifest says, whatever the file's size:
        // the digest then tells a wrong blob, and the size a longer one.
        let (file, real) = layout.file(&blob_path(hex))?;
        let blob = file.take(layer.size());
        let (diff, size) = unpack_verified(blob, tmp, opts.form, bar, "layer", hex)?;
        if size != layer.size() || real != layer.size() {
            return Err(ImageError::SizeMismatch {
                what: "layer".into(),
                hex: hex.to_owned(),
                expected: layer.size(),
                actual: if real != layer.size() { real } else { size },
            });
        }
        if diff_id.strip_prefix("sha256:") != Some(diff.as_str()) {
            return Err(invalid(
                format!("layer sha256:{hex}"),
                format!("its tar hashes to sha256:{diff}, the config says {diff_id}"),
            ));
        }
        Ok(())
    })
}

fn check_layer_type(layer: &Descriptor) -> Result<(), ImageError> {
    match layer.media_type() {
        MediaType::ImageLayer
        | MediaType::ImageLayerGzip
        | MediaType::ImageLayerZstd
        | MediaType::ImageLayerNonDistributable
        | MediaType::ImageLayerNonDistributableGzip
        | MediaType::ImageLayerNonDistributableZstd => Ok(()),
        MediaType::Other(t) if t == DOCKER_LAYER => Ok(()),
        other => Err(invalid(
            format!("layer {}", layer.digest()),
            format!("unsupported media type {other}"),
        )),
    }
}

/// `linux/amd64` and the like: this host as OCI names platforms.
fn platform() -> String {
    format!("{}/{}", Os::default(), Arch::default())
}

/// The one manifest to run: the tagged one(s), through nested indexes, for this
/// platform.
fn choose(
    layout: &LayoutDir,
    index: &ImageIndex,
    image_ref: Option<&str>,
) -> Result<Descriptor, ImageError> {
    let tag = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned())
    };
    let tags: Vec<String> = index.manifests().iter().filter_map(tag).collect();
    let tags_text = || {
        if tags.is_empty() {
            "none".to_owned()
        } else {
            tags.join(", ")
        }
    };
    let candidates: Vec<&Descriptor> = match image_ref {
        None => index.manifests().iter().collect(),
        Some(name) => {
            let tagged: Vec<_> = index
                .manifests()
                .iter()
                .filter(|d| tag(d).as_deref() == Some(name))
                .collect();
            if tagged.is_empty() {
                return Err(ImageError::NoRef {
                    name: name.to_owned(),
                    known: tags_text(),
                });
            }
            tagged
        }
    };
    let mut found = Vec::new();
    let mut seen = Vec::new();
    let mut budget = MAX_DESCRIPTORS;
    for d in candidates {
        expand(layout, d, 0, &mut budget, &mut found, &mut seen)?;
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ImageError::NoPlatform {
            platform: platform(),
            found: if seen.is_empty() {
                "nothing".into()
            } else {
                seen.join(", ")
            },
        }),
        _ => Err(ImageError::Ambiguous(tags_text())),
    }
}

/// Collects the manifests below `d` that are for this platform; `seen` gets
/// the platforms of those that are not.
fn expand(
    layout: &LayoutDir,
    d: &Descriptor,
    depth: u32,
    budget: &mut usize,
    found: &mut Vec<Descriptor>,
    seen: &mut Vec<String>,
) -> Result<(), ImageError> {
    *budget = budget.checked_sub(1).ok_or_else(|| {
        invalid(
            "index",
            format!("more than {MAX_DESCRIPTORS} descriptors in its indexes"),
        )
    })?;
    if let Some(p) = d.platform() {
        if *p.os() != Os::default() || *p.architecture() != Arch::default() {
            seen.push(format!("{}/{}", p.os(), p.architecture()));
            return Ok(());
        }
    }
    let is_index = match d.media_type() {
        MediaType::ImageManifest => false,
        MediaType::ImageIndex => true,
        MediaType::Other(t) if t == DOCKER_MANIFEST => false,
        MediaType::Other(t) if t == DOCKER_LIST => true,
        // Signatures, attestations and other artifacts are not images.
        _ => return Ok(()),
    };
    if !is_index {
        found.push(d.clone());
        return Ok(());
    }
    if depth >= 4 {
        return Err(invalid("index", "indexes nested too deep"));
    }
    let nested: ImageIndex = blob_json(layout, d, "index")?;
    for m in nested.manifests() {
        expand(layout, m, depth + 1, budget, found, seen)?;
    }
    Ok(())
}

/// The descriptor's sha256, checked to be one (also keeps its path inside `blobs/`).
fn hex(d: &Descriptor) -> Result<&str, ImageError> {
    d.as_digest_sha256().ok_or_else(|| {
        invalid(
            format!("blob {}", d.digest()),
            "only sha256 digests are supported",
        )
    })
}

/// A blob's path inside the layout.
fn blob_path(hex: &str) -> PathBuf {
    Path::new("blobs/sha256").join(hex)
}

fn json_file<T: DeserializeOwned>(layout: &LayoutDir, rel: &Path) -> Result<T, ImageError> {
    let bytes = layout.read(rel, MAX_JSON)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| invalid(layout.path().join(rel).display().to_string(), e))
}

/// A small JSON blob (index, manifest, config), checked against its descriptor.
fn blob_json<T: DeserializeOwned>(
    layout: &LayoutDir,
    d: &Descriptor,
    what: &str,
) -> Result<T, ImageError> {
    parse_blob(&blob_bytes(layout, d, what)?, d, what)
}

fn parse_blob<T: DeserializeOwned>(
    bytes: &[u8],
    d: &Descriptor,
    what: &str,
) -> Result<T, ImageError> {
    let hex = hex(d)?;
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what} sha256:{hex}"), e))
}

/// A small blob's bytes, checked against its descriptor.
fn blob_bytes(layout: &LayoutDir, d: &Descriptor, what: &str) -> Result<Vec<u8>, ImageError> {
    let hex = hex(d)?;
    if d.size() > MAX_JSON {
        return Err(invalid(
            format!("{what} sha256:{hex}"),
            format!("{} bytes is too large", d.size()),
        ));
    }
    let (file, real) = layout.file(&blob_path(hex))?;
    let path = layout.path().join(blob_path(hex));
    let bytes = read_exactly(file, d.size()).map_err(|source| ImageError::Read { path, source })?;
    let actual = digest::of_bytes(&bytes);
    if actual != hex {
        return Err(ImageError::DigestMismatch {
            what: what.to_owned(),
            expected: hex.to_owned(),
            actual,
        });
    }
    if bytes.len() as u64 != d.size() || real != d.size() {
        return Err(ImageError::SizeMismatch {
            what: what.to_owned(),
            hex: hex.to_owned(),
            expected: d.size(),
            actual: real,
        });
    }
    Ok(bytes)
}

/// The part of a config only docker writes.
#[derive(serde::Deserialize)]
struct Docker {
    config: Option<DockerConfig>,
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(rename = "Healthcheck")]
    healthcheck: Option<DockerHealthcheck>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerHealthcheck {
    #[serde(default)]
    test: Option<Vec<String>>,
    #[serde(default)]
    interval: Option<i64>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    start_period: Option<i64>,
    #[serde(default)]
    retries: Option<i64>,
}

impl From<DockerHealthcheck> for super::open::ImageHealthcheck {
    fn from(h: DockerHealthcheck) -> Self {
        // Nanoseconds; zero or less is docker's "not set".
        let time = |ns: Option<i64>| {
            ns.filter(|&n| n > 0)
                .map(|n| std::time::Duration::from_nanos(n as u64))
        };
        Self {
            test: h.test.unwrap_or_default(),
            interval: time(h.interval),
            timeout: time(h.timeout),
            start_period: time(h.start_period),
            retries: h
                .retries
                .filter(|&n| n > 0)
                .map(|n| n.min(u32::MAX as i64) as u32),
        }
    }
}

fn run_config(image: &ImageConfiguration) -> ImageConfig {
    let Some(c) = image.config() else {
        return ImageConfig::default();
    };
    ImageConfig {
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().filter(|w| !w.is_empty()),
        user: c.user().clone().filter(|u| !u.is_empty()),
        healthcheck: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::cache::Cache;
    use super::super::raw_tar;
    use super::*;
    use crate::plugin::Whiteouts;
    use tar::EntryType::Regular as F;

    fn blob(layout: &Path, bytes: &[u8]) -> serde_json::Value {
        let hex = digest::of_bytes(bytes);
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    /// A layout of two gzip-less layers, written by hand; `diff_ids` as given
    /// or, when `None`, right.
    fn layout(diff_ids: Option<Vec<String>>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let l = t.path();
        std::fs::create_dir_all(l.join("blobs/sha256")).unwrap();
        std::fs::write(l.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let tars = [
            raw_tar::archive(&[("base", F, "1")]),
            raw_tar::archive(&[("top", F, "2")]),
        ];
        let diff_ids = diff_ids.unwrap_or_else(|| {
            tars.iter()
                .map(|t| format!("sha256:{}", digest::of_bytes(t)))
                .collect()
        });
        let mut layers = Vec::new();
        for t in &tars {
            let mut d = blob(l, t);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            layers.push(d);
        }
        let config = serde_json::json!({
            "os": "linux", "architecture": Arch::default().to_string(),
            "config": {"Env": ["A=1"], "User": "app"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let mut config = blob(l, config.to_string().as_bytes());
        config["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": layers,
        });
        let mut manifest = blob(l, manifest.to_string().as_bytes());
        manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest]});
        std::fs::write(l.join("index.json"), index.to_string()).unwrap();
        t
    }

    fn options(cache: &Cache, max_layers: usize) -> Options<'_> {
        Options {
            image_ref: None,
            form: Whiteouts::Overlay,
            max_layers,
            cache,
        }
    }

    #[test]
    fn layers_come_top_first_with_the_run_config() {
        let l = layout(None);
        let c = tempfile::tempdir().unwrap();
        let cache = Cache::at(c.path());
        let (dirs, config) = open(l.path(), &options(&cache, usize::MAX)).unwrap();
        assert!(dirs[0].join("top").is_file() && dirs[1].join("base").is_file());
        assert_eq!(config.env, ["A=1"]);
        assert_eq!(config.user.as_deref(), Some("app"));
    }

    #[test]
    fn more_layers_than_the_driver_stacks_is_refused_before_unpacking() {
        let l = layout(None);
        let c = tempfile::tempdir().unwrap();
        let cache = Cache::at(c.path().join("cache"));
        let err = open(l.path(), &options(&cache, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the image has 2 layers and the rootfs driver stacks at most 1"
        );
        assert!(!cache.root().exists());
    }

    #[test]
    fn a_layer_that_is_not_what_the_config_says_is_refused() {
        let wrong = format!("sha256:{}", "0".repeat(64));
        let l = layout(Some(vec![wrong.clone(), wrong]));
        let c = tempfile::tempdir().unwrap();
        let cache = Cache::at(c.path());
        let err = open(l.path(), &options(&cache, usize::MAX)).unwrap_err();
        assert!(
            err.to_string().contains(", the config says sha256:000"),
            "{err}"
        );
        let layers = c.path().join("overlay/sha256");
        assert_eq!(std::fs::read_dir(layers).unwrap().count(), 0);
    }
}
