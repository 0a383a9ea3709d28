//! Hole 4: a device node is a door to the host's hardware. The container may
//! not make one (no MKNOD), and one it gets anyway (with `-cap-add MKNOD`,
//! from a bind mount, in an image) cannot be opened: only the standard nodes
//! psdock binds into /dev work. The nodes used are char devices the host
//! itself opens (this host refuses to open new block nodes even outside a
//! container), so a refusal is the container's doing.

use std::path::Path;
use std::process::Command;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::util::*;

/// The host's root file system's device, `MAJOR:MINOR`, as mountinfo says.
fn host_root_device() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f[4] == "/")
        .map(|f| f[2].to_owned())
        .unwrap()
}

/// A char node with /dev/zero's numbers, under a name of its own: it reads
/// as zeros wherever devices are honoured.
fn zero_node(path: &Path) {
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 5),
    )
    .unwrap();
}

#[test]
fn container_root_cannot_make_a_device_node() {
    let sb = Sandbox::new();
    let (major, minor) = host_root_device()
        .split_once(':')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let script = format!(
        "mknod /tmp/disk b {major} {minor} 2>&1; mknod /dev/zero2 c 1 5 2>&1; \
         ls /tmp/disk /dev/zero2 2>&1 | wc -l"
    );
    let out = sb.run(sh(&script));
    assert_eq!(
        stdout(&out),
        "mknod: /tmp/disk: Operation not permitted\n\
         mknod: /dev/zero2: Operation not permitted\n\
         2\n",
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn a_node_made_with_cap_add_mknod_or_bound_from_the_host_cannot_be_opened() {
    let sb = Sandbox::new();
    let host_dir = sb.path("devices");
    std::fs::create_dir(&host_dir).unwrap();
    zero_node(&host_dir.join("zero"));
    // The host reads it: it is a working device.
    let mut byte = [1u8];
    std::io::Read::read_exact(
        &mut std::fs::File::open(host_dir.join("zero")).unwrap(),
        &mut byte,
    )
    .unwrap();
    assert_eq!(byte, [0]);
    let script = "for dir in /dev /dev/shm; do mknod $dir/zero2 c 1 5; done; \
        for node in /dev/zero2 /dev/shm/zero2 /mnt/zero; do head -c 1 $node | wc -c; done 2>&1; \
        for std in null zero full random urandom; do head -c 1 /dev/$std | wc -c; done | tr -d '\\n'";
    let bind = format!("{}:/mnt", host_dir.display());
    let out = sb.run(
        ["-cap-add", "MKNOD", "-v", &bind]
            .into_iter()
            .chain(sh(script)),
    );
    assert_eq!(
        stdout(&out),
        "head: /dev/zero2: Permission denied\n0\n\
         head: /dev/shm/zero2: Permission denied\n0\n\
         head: /mnt/zero: Permission denied\n0\n\
         01111",
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn an_oci_layer_s_device_node_is_skipped_with_a_warning() {
    let sb = Sandbox::new();
    let layout = crate::oci::copy_layout(&sb);
    let dir = sb.path("layer");
    std::fs::create_dir(&dir).unwrap();
    zero_node(&dir.join("zero"));
    std::fs::write(dir.join("file"), "kept\n").unwrap();
    // umoci, as root, writes the node into the layer as a char device entry.
    let st = Command::new("umoci")
        .args(["insert", "--image"])
        .arg(format!("{}:plain", layout.display()))
        .arg(&dir)
        .arg("/devs")
        .status()
        .unwrap();
    assert!(st.success());
    let out = output(
        sb.bare()
            .arg("-i")
            .arg(&layout)
            .args(["-image-ref", "plain", "-r"])
            .arg(sb.rootfs())
            .args(sh("ls /devs")),
    );
    assert_eq!((code(&out), stdout(&out)), (0, "file\n".into()), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.starts_with("psdock: layer sha256:")
            && err.ends_with(": device nodes skipped, containers may not use them: devs/zero\n")
            && err.lines().count() == 1,
        "{err}"
    );
    // Nor is it in the layer cache, on the host's file system.
    let found = Command::new("find")
        .arg(sb.cache_dir())
        .args(["-name", "zero"])
        .output()
        .unwrap();
    assert_eq!(stdout(&found), "");
    sb.assert_clean();
}

/// The container's root is `nodev` inside the container (`init::pivot`).
#[test]
fn a_node_in_the_image_or_made_on_the_root_cannot_be_opened() {
    let sb = Sandbox::new();
    let image = sb.image_copy("image");
    zero_node(&image.join("etc/zero"));
    let script = "mknod /tmp/zero2 c 1 5; \
        for node in /etc/zero /tmp/zero2; do head -c 1 $node | wc -c; done 2>&1; \
        head -c 1 /dev/zero | wc -c";
    let out = output(
        sb.psdock_with(&image)
            .args(["-cap-add", "MKNOD"])
            .args(sh(script)),
    );
    assert_eq!(
        stdout(&out),
        "head: /etc/zero: Permission denied\n0\n\
         head: /tmp/zero2: Permission denied\n0\n\
         1\n",
        "{out:?}"
    );
    sb.assert_clean();
}
