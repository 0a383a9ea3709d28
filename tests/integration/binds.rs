//! -bind-mount: read-only really is, read-write is the default, missing targets
//! are created inside the rootfs, symlinks in the image cannot lead a mount out
//! of it, and nothing under a source is ever deleted.

use crate::util::*;

/// A host directory with a file in it.
fn source(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    let dir = sb.path(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hello"), "from the host\n").unwrap();
    dir
}

#[test]
fn read_only_binds_refuse_writes_with_erofs() {
    let sb = Sandbox::new();
    let src = source(&sb, "src");
    let v = format!("{}:/data:ro", src.display());
    let out = sb.run([
        "-v",
        &v,
        "sh",
        "-c",
        "cat /data/hello; echo x > /data/hello; touch /data/new; rm /data/hello; echo $?",
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "from the host\n1\n");
    let err = stderr(&out);
    assert_eq!(err.matches("Read-only file system").count(), 3, "{err}");
    assert_eq!(
        std::fs::read_to_string(src.join("hello")).unwrap(),
        "from the host\n"
    );
    assert!(!src.join("new").exists());
    // A read-only file bind.
    let v = format!("{}:/etc/hello:ro", src.join("hello").display());
    let out = sb.run(["-v", &v, "sh", "-c", "echo x >> /etc/hello"]);
    assert!(stderr(&out).contains("Read-only file system"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(src.join("hello")).unwrap(),
        "from the host\n"
    );
    sb.assert_clean();
}

#[test]
fn binds_are_read_write_by_default_and_with_rw() {
    let sb = Sandbox::new();
    let src = source(&sb, "src");
    for (suffix, file) in [("", "default"), (":rw", "rw")] {
        let v = format!("{}:/data{suffix}", src.display());
        let out = sb.run([
            "-v",
            &v,
            "sh",
            "-c",
            &format!("echo {file} > /data/{file}; cat /data/hello"),
        ]);
        assert_eq!(
            (code(&out), stdout(&out).as_str()),
            (0, "from the host\n"),
            "{out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(src.join(file)).unwrap(),
            format!("{file}\n")
        );
    }
    sb.assert_clean();
}

#[test]
fn missing_targets_are_created_inside_the_rootfs_only() {
    let sb = Sandbox::new();
    let dir = source(&sb, "src");
    let file = sb.path("file.txt");
    std::fs::write(&file, "a file\n").unwrap();
    let image = sb.image_copy("img");
    let before = tree_snapshot(&image);
    let d = format!("{}:/new/deep/dir", dir.display());
    let f = format!("{}:/also/new/file.txt:ro", file.display());
    let out = output(
        sb.psdock_with(&image)
            .args(["-v", &d, "-v", &f])
            .args(sh("cat /new/deep/dir/hello /also/new/file.txt; [ -d /new/deep/dir ] && [ -f /also/new/file.txt ] && echo ok")),
    );
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "from the host\na file\nok\n"),
        "{out:?}"
    );
    assert_eq!(tree_snapshot(&image), before, "the image was written to");
    sb.assert_clean();
}

#[test]
fn nothing_under_a_source_is_ever_deleted() {
    let sb = Sandbox::new();
    let src = source(&sb, "src");
    std::fs::create_dir(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/deep"), "deep\n").unwrap();
    let file = sb.path("single");
    std::fs::write(&file, "single\n").unwrap();
    let v = format!("{}:/data", src.display());
    let f = format!("{}:/tmp/single", file.display());
    // Made in the container on a rw bind, under a target that did not exist:
    // it lives on the host, and must survive the teardown of the rootfs.
    let out = sb.run([
        "-v",
        &v,
        "-v",
        &f,
        "sh",
        "-c",
        "echo made > /data/made; mkdir /data/dir; echo in > /data/dir/in",
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    let before = tree_snapshot(&src);
    sb.assert_clean();
    assert_eq!(tree_snapshot(&src), before);
    for (p, want) in [
        ("hello", "from the host\n"),
        ("sub/deep", "deep\n"),
        ("made", "made\n"),
        ("dir/in", "in\n"),
    ] {
        assert_eq!(std::fs::read_to_string(src.join(p)).unwrap(), want, "{p}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "single\n");
}

#[test]
fn symlinks_in_the_image_cannot_lead_a_bind_mount_onto_the_host() {
    let sb = Sandbox::new();
    let src = source(&sb, "src");
    let image = sb.image_copy("img");
    std::os::unix::fs::symlink("/", image.join("escape")).unwrap();
    std::fs::create_dir(image.join("deep")).unwrap();
    std::os::unix::fs::symlink("../..", image.join("deep/up")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", image.join("dots")).unwrap();
    let before = tree_snapshot(&image);
    // Followed on the host, these would land in the sandbox.
    let sbdir = sb.dir.path().display().to_string();
    let targets = [
        format!("/escape{sbdir}/landing1"),
        format!("/deep/up{sbdir}/landing2"),
        format!("/dots{sbdir}/landing3"),
    ];
    let mut cmd = sb.psdock_with(&image);
    for t in &targets {
        cmd.arg("-v").arg(format!("{}:{t}", src.display()));
    }
    // Inside, each resolves as if the image's root were `/`.
    let script =
        format!("cat {sbdir}/landing1/hello {sbdir}/landing2/hello {sbdir}/landing3/hello");
    let out = output(cmd.args(sh(&script)));
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "from the host\n".repeat(3));
    for landing in ["landing1", "landing2", "landing3"] {
        assert!(!sb.path(landing).exists(), "{landing} made on the host");
    }
    assert_eq!(tree_snapshot(&image), before, "the image was written to");
    sb.assert_clean();
}
