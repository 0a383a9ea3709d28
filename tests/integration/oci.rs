//! OCI image layouts built by umoci and skopeo (scripts/oci-image.sh) and
//! rootfs tarballs as `-image`: layers, whiteouts, config, cache, refusals.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::*;

/// The layout of scripts/oci-image.sh, built once per target directory.
pub fn layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        built_once(
            "oci-image",
            "index.json",
            "oci-image.sh",
            &[image().as_os_str()],
        )
    })
}

fn cache(sb: &Sandbox) -> PathBuf {
    sb.cache_dir()
}

/// `psdock -i IMAGE -r ROOTFS` (the sandbox's own layer cache included).
fn psdock_with(sb: &Sandbox, image: &Path) -> Command {
    let mut cmd = sb.bare();
    cmd.arg("-i").arg(image).arg("-r").arg(sb.rootfs());
    cmd
}

fn run_with(sb: &Sandbox, image: &Path, args: &[&str]) -> Output {
    psdock_with(sb, image).args(args).output().unwrap()
}

/// The layer digests of a tag, bottom first, as the manifest lists them.
fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    let json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let index = json(layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let manifest = json(blob(manifest["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap()["sha256:".len()..].to_owned())
        .collect()
}

/// Every path below `dir`, sorted, with the inode of each: what "the cache is
/// as it was" means.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            out.push((
                p.strip_prefix(dir).unwrap().display().to_string(),
                meta.ino(),
            ));
            if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_layout(sb: &Sandbox) -> PathBuf {
    let copy = sb.path("layout");
    let st = Command::new("cp")
        .arg("-a")
        .arg(layout())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    copy
}

#[test]
fn a_later_layer_deletes_a_file_and_replaces_a_directory() {
    for tag in ["layers", "layers-zstd"] {
        let sb = Sandbox::new();
        let out = run_with(
            &sb,
            layout(),
            &[
                "-image-ref",
                tag,
                "sh",
                "-c",
                "cat /data/kept; ls -A /data /opq; find / -xdev -name '.wh.*'; \
                 grep ' / / ' /proc/self/mountinfo | grep -o 'lowerdir=[^,]*'",
            ],
        );
        assert_eq!(code(&out), 0, "{tag}: {}", stderr(&out));
        let text = stdout(&out);
        let (seen, lower) = text.split_once("lowerdir=").unwrap();
        assert_eq!(seen, "kept\n/data:\nkept\n\n/opq:\nnew\n", "{tag}");
        // Stacked as they are, newest on top, each from the cache: never flattened.
        let layers: Vec<PathBuf> = layer_digests(layout(), tag)
            .iter()
            .rev()
            .map(|d| cache(&sb).join("overlay/sha256").join(d))
            .collect();
        assert_eq!(layers.len(), 5, "{tag}");
        let lower: Vec<PathBuf> = lower.trim().split(':').map(PathBuf::from).collect();
        assert_eq!(lower, layers, "{tag}");
        sb.assert_clean();
    }
}

#[test]
fn the_image_config_applies_under_the_flags() {
    let sb = Sandbox::new();
    let run = |args: &[&str]| {
        let mut all = vec!["-image-ref", "config"];
        all.extend_from_slice(args);
        let out = run_with(&sb, layout(), &all);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        sb.assert_clean();
        stdout(&out)
    };
    // Entrypoint + Cmd, with the image's Env, WorkingDir and User.
    assert_eq!(run(&[]), "cmd: hello /home/app 1000\n");
    // A given command replaces Cmd, after the Entrypoint (sh -c).
    assert_eq!(run(&["echo given: $GREETING"]), "given: hello\n");
    // Each flag wins over the image's setting.
    assert_eq!(
        run(&[
            "-e",
            "GREETING=bye",
            "-cwd",
            "/tmp",
            "-user",
            "root",
            "echo $GREETING $(pwd) $(id -u) $HOME"
        ]),
        "bye /tmp 0 /root\n"
    );
    // -entrypoint replaces the Entrypoint and drops the Cmd written for it.
    assert_eq!(run(&["-entrypoint", "/bin/echo"]), "\n");
    assert_eq!(run(&["-entrypoint", "", "id", "-un"]), "app\n");
}

#[test]
fn a_layout_with_several_images_needs_a_valid_image_ref() {
    let sb = Sandbox::new();
    let prefix = format!("psdock: -image {}: ", layout().display());
    let out = run_with(&sb, layout(), &["true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "{prefix}the layout holds several images: choose one with -image-ref \
             (tags: plain, layers, layers-zstd, config)\n"
        )
    );
    let out = run_with(&sb, layout(), &["-image-ref", "latest", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "{prefix}-image-ref latest: no such tag in the layout \
             (tags: plain, layers, layers-zstd, config)\n"
        )
    );
    // Nothing was unpacked for a refused image.
    assert!(!cache(&sb).exists());
    let out = sb.run(["-image-ref", "plain", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).ends_with("-image-ref plain: the image is not an OCI image layout\n"),
        "{}",
        stderr(&out)
    );
    sb.assert_clean();
}

#[test]
fn a_corrupt_blob_is_exit_125_and_leaves_the_cache_as_it_was() {
    let sb = Sandbox::new();
    let copy = copy_layout(&sb);
    let out = run_with(&sb, &copy, &["-image-ref", "plain", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = snapshot(&cache(&sb));
    let digests = layer_digests(&copy, "layers");
    let blob = copy.join("blobs/sha256").join(&digests[1]);
    let good = std::fs::read(&blob).unwrap();
    // A flipped byte (the gzip stream breaks too), then a valid gzip of other
    // content (only the digest can tell).
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let other = std::fs::read(copy.join("blobs/sha256").join(&digests[2])).unwrap();
    for bad in [flipped, other] {
        std::fs::write(&blob, &bad).unwrap();
        let out = run_with(&sb, &copy, &["-image-ref", "layers", "true"]);
        assert_eq!(code(&out), 125);
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "psdock: -image {}: blob sha256:{} (layer): digest mismatch, its content hashes to sha256:",
                copy.display(),
                digests[1]
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(snapshot(&cache(&sb)), before);
        sb.assert_clean();
    }
    // Put right, the same image runs, and the cached layer is used as it is.
    std::fs::write(&blob, &good).unwrap();
    let out = run_with(&sb, &copy, &["-image-ref", "layers", "cat", "/data/kept"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "kept\n"),
        "{}",
        stderr(&out)
    );
    let after = snapshot(&cache(&sb));
    assert!(before.iter().all(|entry| after.contains(entry)));
    sb.assert_clean();
}

#[path = "../../src/image/raw_tar.rs"]
mod raw_tar;

#[test]
fn a_hostile_tarball_is_refused_and_writes_nothing_outside() {
    use tar::EntryType::{Link as H, Regular as F, Symlink as S};
    let sb = Sandbox::new();
    let outside = sb.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.to_str().unwrap();
    let abs = format!("{target}/pwned");
    type Entries<'a> = Vec<(&'a str, tar::EntryType, &'a str)>;
    let cases: Vec<(Entries, &str, &str)> = vec![
        (
            vec![("../../pwned", F, "x")],
            "../../pwned",
            "its path contains `..`",
        ),
        (vec![(&abs, F, "x")], &abs, "its path is absolute"),
        (
            vec![("out", S, target), ("out/pwned", F, "x")],
            "out/pwned",
            "its directory leads out of the layer through a symlink",
        ),
        (
            vec![
                ("up", S, "../../../../../../../.."),
                ("up/tmp/pwned", F, "x"),
            ],
            "up/tmp/pwned",
            "its directory leads out of the layer through a symlink",
        ),
        (
            vec![("hard", H, "../../../../etc/passwd")],
            "hard",
            "its path contains `..`",
        ),
    ];
    for (entries, entry, why) in cases {
        let tarball = sb.path("hostile.tar");
        std::fs::write(&tarball, raw_tar::archive(&entries)).unwrap();
        let out = run_with(&sb, &tarball, &["true"]);
        assert_eq!(code(&out), 125, "{entry}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "psdock: -image {}: layer sha256:",
                tarball.display()
            )) && err.ends_with(&format!(": refusing entry `{entry}`: {why}\n")),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{entry}");
        let layers = cache(&sb).join("overlay/sha256");
        assert_eq!(std::fs::read_dir(&layers).unwrap().count(), 0, "{entry}");
        assert_eq!(
            std::fs::read_dir(cache(&sb).join("overlay/tmp"))
                .unwrap()
                .count(),
            0
        );
        sb.assert_clean();
    }
}

#[test]
fn a_rootfs_tarball_runs_and_is_unpacked_once() {
    let sb = Sandbox::new();
    for (name, flag) in [("rootfs.tar", "-cf"), ("rootfs.tar.gz", "-czf")] {
        let tarball = sb.path(name);
        let st = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(image())
            .arg(flag)
            .arg(&tarball)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let run = || {
            let out = run_with(&sb, &tarball, &["sh", "-c", "id -un app; hostname"]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            sb.assert_clean();
            stdout(&out)
        };
        assert_eq!(run(), "app\npsdock\n");
        let layers = snapshot(&cache(&sb).join("overlay/sha256"));
        run();
        assert_eq!(
            snapshot(&cache(&sb).join("overlay/sha256")),
            layers,
            "{name}"
        );
    }
    // Two tarballs, two layers.
    assert_eq!(
        std::fs::read_dir(cache(&sb).join("overlay/sha256"))
            .unwrap()
            .count(),
        2
    );
}

/// Waits until `n` processes wait for the flock on the file with inode `ino`.
fn wait_for_waiters(ino: u64, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let waiting = locks
            .lines()
            .filter(|l| l.contains("->") && l.contains(&format!(":{ino} ")))
            .count();
        if waiting >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} waiters, wanted {n}:\n{locks}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_psdocks_starting_together_unpack_a_new_layer_once() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let sb = Sandbox::new();
    let [digest] = layer_digests(layout(), "plain").try_into().unwrap();
    let layers = cache(&sb).join("overlay/sha256");
    let tmp = cache(&sb).join("overlay/tmp");
    std::fs::create_dir_all(&layers).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    // Hold the layer's lock, so that both are surely waiting on it together.
    let lock_path = layers.join(format!("{digest}.lock"));
    let lock = std::fs::File::create(&lock_path).unwrap();
    let ino = lock.metadata().unwrap().ino();
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).unwrap();
    inotify.add_watch(&tmp, AddWatchFlags::IN_CREATE).unwrap();
    let start = |rootfs: &str| {
        let mut cmd = sb.bare();
        cmd.arg("-i")
            .arg(layout())
            .arg("-r")
            .arg(sb.path(rootfs))
            .args([
                "-image-ref",
                "plain",
                "sh",
                "-c",
                "cat /bin/busybox >/dev/null && echo ok",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (start("rootfs-a"), start("rootfs-b"));
    wait_for_waiters(ino, 2);
    drop(lock);
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (code(&out), stdout(&out).as_str()),
            (0, "ok\n"),
            "{}",
            stderr(&out)
        );
    }
    let unpacks: Vec<String> = match inotify.read_events() {
        Ok(events) => events
            .into_iter()
            .filter_map(|e| e.name)
            .map(|n| n.to_string_lossy().into_owned())
            .collect(),
        Err(nix::errno::Errno::EAGAIN) => Vec::new(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(unpacks.len(), 1, "{unpacks:?}");
    assert!(unpacks[0].starts_with(&format!("{digest}.")));
    assert!(layers.join(&digest).is_dir());
    assert!(!lock_path.exists(), "the lock file is left behind");
    for r in ["rootfs-a", "rootfs-b"] {
        assert!(!sb.path(r).exists());
    }
}

#[test]
fn unpacking_shows_a_progress_bar_on_a_terminal_only() {
    use std::io::Read;
    let sb = Sandbox::new();
    // Off a terminal: not a byte on stderr, though a layer was unpacked.
    let out = run_with(&sb, layout(), &["-image-ref", "plain", "true"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (0, ""));
    assert_eq!(
        std::fs::read_dir(cache(&sb).join("overlay/sha256"))
            .unwrap()
            .count(),
        1
    );

    // On a terminal, with a cold cache: the bar.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut child = psdock_with(&sb, layout())
        .env("PSDOCK_CACHE_DIR", sb.path("cold-cache"))
        .args(["-image-ref", "plain", "true"])
        .stderr(std::fs::File::from(pty.slave))
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The slave is closed: read until the pty says there is no more (EIO).
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("psdock: unpacking"), "{seen:?}");
    sb.assert_clean();
}
