//! Image content that would hang psdock: an OCI layout whose files are not
//! what they say (a blob that is a symlink to /dev/zero, a FIFO), sizes that
//! overflow, and a layer that takes for ever to unpack, which SIGTERM or
//! SIGINT must end at once with nothing left.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::Signal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::*;

/// The digest a hostile manifest gives its layer: never checked, since no
/// unpack gets to the end.
const LAYER: &str = "abababababababababababababababababababababababababababababababab";

fn blob(layout: &Path, bytes: &[u8]) -> Value {
    let hex = format!("{:x}", Sha256::digest(bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
}

/// A layout, written by hand, of one image whose layers are `(hex, size)`
/// as the manifest declares them; their blobs are the test's to make.
fn layout(sb: &Sandbox, layers: &[(&str, u64)]) -> PathBuf {
    let l = sb.path("layout");
    std::fs::create_dir_all(l.join("blobs/sha256")).unwrap();
    std::fs::write(l.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let diff_ids: Vec<String> = layers.iter().map(|(h, _)| format!("sha256:{h}")).collect();
    let config = json!({
        "os": "linux", "architecture": arch,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut config = blob(&l, config.to_string().as_bytes());
    config["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layers: Vec<Value> = layers
        .iter()
        .map(|(hex, size)| {
            json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": format!("sha256:{hex}"), "size": size,
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers,
    });
    let mut manifest = blob(&l, manifest.to_string().as_bytes());
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(l.join("index.json"), index.to_string()).unwrap();
    l
}

fn layer_blob(layout: &Path) -> PathBuf {
    layout.join("blobs/sha256").join(LAYER)
}

/// The layer cache holds no layer, no unpack in progress and no lock.
fn assert_cache_empty(sb: &Sandbox) {
    for dir in ["overlay/sha256", "overlay/tmp"] {
        let left: Vec<_> = std::fs::read_dir(sb.cache_dir().join(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

fn refused(sb: &Sandbox, image: &Path, names: &[&str]) {
    let out = output(sb.psdock_with(image).arg("true"));
    assert_psdock_error(&out, names);
    sb.assert_clean();
    assert_cache_empty(sb);
}

#[test]
fn a_layout_file_that_is_a_symlink_to_dev_zero_is_refused() {
    let sb = Sandbox::new();
    let l = layout(&sb, &[(LAYER, 1 << 20)]);
    std::os::unix::fs::symlink("/dev/zero", layer_blob(&l)).unwrap();
    refused(
        &sb,
        &l,
        &[&format!("{LAYER}: a symlink"), "never through a link"],
    );
    // index.json too, read before anything else.
    std::fs::remove_file(l.join("index.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", l.join("index.json")).unwrap();
    refused(&sb, &l, &["index.json: a symlink"]);
}

#[test]
fn a_layer_blob_that_is_a_fifo_is_refused() {
    let sb = Sandbox::new();
    let l = layout(&sb, &[(LAYER, 1 << 20)]);
    nix::unistd::mkfifo(
        &layer_blob(&l),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    refused(&sb, &l, &[&format!("{LAYER}: a FIFO, not a regular file")]);
}

#[test]
fn layer_sizes_that_overflow_are_refused() {
    let sb = Sandbox::new();
    let other = &LAYER.replace('a', "c");
    let l = layout(&sb, &[(LAYER, u64::MAX), (other, u64::MAX)]);
    refused(
        &sb,
        &l,
        &["manifest: the sizes of its layers add up to more than 2^64"],
    );
}

#[test]
fn sigterm_or_sigint_ends_an_endless_unpack_and_leaves_nothing() {
    let sb = Sandbox::new();
    // 64 GiB of zeros, sparse: it costs nothing, and takes minutes to hash.
    let size = 64 << 30;
    let l = layout(&sb, &[(LAYER, size)]);
    std::fs::File::create(layer_blob(&l))
        .unwrap()
        .set_len(size)
        .unwrap();
    let tmp = sb.cache_dir().join("overlay/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for (sig, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC).unwrap();
        inotify.add_watch(&tmp, AddWatchFlags::IN_CREATE).unwrap();
        let run = Running::start(sb.psdock_with(&l).arg("true"));
        // The unpack has begun once its directory is there.
        let mut fds = [nix::poll::PollFd::new(
            inotify.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)).unwrap();
        assert_eq!(ready, 1, "the unpack did not start");
        let events = inotify.read_events().unwrap();
        assert!(events.iter().any(|e| e
            .name
            .as_ref()
            .is_some_and(|n| n.to_string_lossy().starts_with(LAYER))));
        run.signal(sig);
        let out = run.finish();
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "psdock: -image {}: stopped by {} while reading the image\n",
                l.display(),
                sig.as_str()
            )
        );
        sb.assert_clean();
        assert_cache_empty(&sb);
    }
}
