//! The rootfs: what ROOTFS may be, the lock, an image that is never written to,
//! the merged view on the host, the hidden siblings, and the cleanup.

use nix::sys::signal::Signal;

use crate::util::*;

/// A directory someone other than psdock made, holding a file `theirs`.
fn someone_elses(dir: std::path::PathBuf) {
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("theirs"), "kept").unwrap();
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // The state directory is psdock's, made on first use; its entries are
        // checked by assert_clean.
        .filter(|n| n != "state")
        .collect();
    names.sort();
    names
}

#[test]
fn an_absent_rootfs_is_made_and_removed_an_empty_one_is_used_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    std::fs::write(sb.path("neighbour"), "stays").unwrap();
    let before = listing(sb.dir.path());
    let out = sb.run(["true"]);
    assert_eq!(code(&out), 0, "{out:?}");
    sb.assert_clean();
    assert_eq!(listing(sb.dir.path()), before);

    // The user's own directory, with a mode psdock would not choose: used,
    // and found as it was left.
    std::fs::create_dir(sb.rootfs()).unwrap();
    std::fs::set_permissions(sb.rootfs(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let out = sb.run(sh("echo > /new-file; ls /bin/busybox"));
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "/bin/busybox\n"),
        "{out:?}"
    );
    sb.assert_clean_but_rootfs();
    assert_eq!(listing(&sb.rootfs()), Vec::<String>::new());
    let mode = std::fs::metadata(sb.rootfs()).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o750);
    std::fs::remove_dir(sb.rootfs()).unwrap();
    assert_eq!(listing(sb.dir.path()), before);
}

#[test]
fn a_relative_rootfs_path_works_from_the_current_directory() {
    let sb = Sandbox::new();
    for r in ["rootfs", "./rootfs/", "rootfs/"] {
        let out = output(
            sb.bare()
                .current_dir(sb.dir.path())
                .arg("-i")
                .arg(image())
                .args(["-r", r, "-e"])
                .arg(sb.mark())
                .args(sh("echo hi > /f; cat /f")),
        );
        assert_eq!(
            (code(&out), stdout(&out).as_str()),
            (0, "hi\n"),
            "{r}: {out:?}"
        );
        sb.assert_clean();
    }
}

#[test]
fn two_psdocks_never_share_a_rootfs() {
    let sb = Sandbox::new();
    let mut first = sb.spawn(sh("echo ready; read x; echo got $x"));
    assert_eq!(first.line(), "ready");
    let out = sb.run(["true"]);
    let line = assert_psdock_error(&out, &["-rootfs", sb.rootfs().to_str().unwrap(), "in use"]);
    assert!(!line.contains("left behind"), "{line}");
    // The first is unharmed: its rootfs still mounted, and it runs on.
    assert!(sb.rootfs().join("bin/busybox").exists());
    first.send_line("go");
    assert_eq!(first.line(), "got go");
    sb.ends(first, 0);
}

#[test]
fn a_sibling_no_psdock_holds_is_refused_as_left_behind_and_kept() {
    let sb = Sandbox::new();
    someone_elses(sb.sibling());
    let out = sb.run(["true"]);
    let line = assert_psdock_error(
        &out,
        &[
            "-rootfs",
            sb.rootfs().to_str().unwrap(),
            "left behind",
            sb.sibling().to_str().unwrap(),
        ],
    );
    assert!(!line.contains("in use"), "{line}");
    assert_eq!(listing(&sb.sibling()), ["theirs"]);
    assert!(!sb.rootfs().exists() && !sb.upper().exists());
    assert!(sb.mounts().is_empty());
}

#[test]
fn on_disk_an_upper_directory_without_its_sibling_is_refused_and_kept() {
    let sb = Sandbox::new();
    someone_elses(sb.upper());
    let out = sb.run(["-upper", "disk", "true"]);
    assert_psdock_error(&out, &["cannot create", sb.upper().to_str().unwrap()]);
    assert_eq!(listing(&sb.upper()), ["theirs"]);
    assert!(!sb.rootfs().exists() && !sb.sibling().exists());
    assert!(sb.mounts().is_empty());
}

#[test]
fn the_image_is_never_written_to() {
    let sb = Sandbox::new();
    let image = sb.image_copy("img");
    let before = tree_snapshot(&image);
    let script = "echo new > /bin/new; rm /etc/passwd; echo more >> /etc/group; chmod 711 /bin/busybox; \
                  chown 4711 /etc; rm -rf /home; mkdir /newdir; touch /bin; ln -s x /etc/link; \
                  mv /root /moved; echo changed > /etc/group; \
                  ls /home /etc/passwd 2>/dev/null; cat /bin/new /etc/group; ls -ld /bin/busybox | cut -c1-10";
    let out = output(sb.psdock_with(&image).args(sh(script)));
    // The container saw its own changes...
    assert_eq!(stdout(&out), "new\nchanged\n-rwx--x--x\n", "{out:?}");
    // ...and none of them reached the image.
    assert_eq!(tree_snapshot(&image), before);
    sb.assert_clean();
}

#[test]
fn the_merged_view_is_visible_on_the_host_while_the_command_runs() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), "").unwrap();
    let bind = format!("{}:/data", src.display());
    let mut run = sb.spawn(["-v", &bind].into_iter().chain(sh(
        "echo inside > /hello; echo ready; read x; cat /from-host",
    )));
    assert_eq!(run.line(), "ready");
    let root = sb.rootfs();
    // Only the overlay and the tmpfs of its upper layer: the container's own
    // mounts (/proc, /dev, its binds) do not propagate back to the host.
    assert_eq!(sb.mounts(), [sb.sibling(), root.clone()]);
    assert!(
        !root.join("data").exists()
            || std::fs::read_dir(root.join("data"))
                .unwrap()
                .next()
                .is_none()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("hello")).unwrap(),
        "inside\n"
    );
    assert!(root.join("bin/busybox").is_file());
    std::fs::write(root.join("from-host"), "host wrote this\n").unwrap();
    run.send_line("");
    assert_eq!(run.line(), "host wrote this");
    sb.ends(run, 0);
}

#[test]
fn the_hidden_siblings_are_never_visible_inside() {
    for upper in ["tmpfs", "disk"] {
        let sb = Sandbox::new();
        let script = "ls -a / /..; find / -path /proc -prune -o -path /sys -prune -o -name '*psdock*' -print; \
                      echo ready; read x";
        let mut run = sb.spawn(["-upper", upper].into_iter().chain(sh(script)));
        let mut seen = Vec::new();
        loop {
            let l = run.line();
            if l == "ready" {
                break;
            }
            seen.push(l);
        }
        // They are there, next to ROOTFS on the host (the upper directory
        // empty, as the command wrote nothing)...
        let upper_dir = if upper == "tmpfs" {
            assert_eq!(listing(&sb.sibling()), ["upper", "work"]);
            sb.sibling().join("upper")
        } else {
            assert_eq!(listing(&sb.sibling()), ["work"]);
            // The layer sits in a directory of root's alone: it takes the
            // image's mode, and what the container writes there must be out
            // of other host users' reach.
            assert_eq!(listing(&sb.upper()), ["layer"]);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(sb.upper()).unwrap().permissions(),
            );
            assert_eq!(mode & 0o7777, 0o700, "-upper disk: {mode:o}");
            sb.upper().join("layer")
        };
        assert_eq!(listing(&upper_dir), Vec::<String>::new(), "-upper {upper}");
        // ...and nowhere in the container.
        assert!(!seen.iter().any(|l| l.contains("psdock")), "{seen:#?}");
        assert!(seen.iter().any(|l| l == "bin"), "{seen:#?}");
        run.send_line("");
        sb.ends(run, 0);
    }
}

/// The file system a path is on, as statfs(2) names it.
fn fs_type(path: &std::path::Path) -> nix::sys::statfs::FsType {
    nix::sys::statfs::statfs(path).unwrap().filesystem_type()
}

#[test]
fn the_upper_layer_is_in_a_tmpfs_by_default_and_on_disk_with_upper_disk() {
    for upper in ["tmpfs", "disk"] {
        let sb = Sandbox::new();
        // The default when the flag is not given.
        let flag: &[&str] = if upper == "disk" {
            &["-upper", "disk"]
        } else {
            &[]
        };
        let script = sh("echo written > /new; echo ready; read x");
        let mut run = sb.spawn(flag.iter().copied().chain(script));
        assert_eq!(run.line(), "ready");
        let written = if upper == "tmpfs" {
            sb.sibling().join("upper/new")
        } else {
            sb.upper().join("layer/new")
        };
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
        let on_tmpfs = fs_type(&written) == nix::sys::statfs::TMPFS_MAGIC;
        assert_eq!(on_tmpfs, upper == "tmpfs", "-upper {upper}: {written:?}");
        assert_eq!(
            fs_type(&written) == fs_type(&sb.path("")),
            upper == "disk",
            "-upper {upper}: {written:?}"
        );
        run.send_line("");
        sb.ends(run, 0);
    }
}

#[test]
fn with_the_upper_layer_in_a_tmpfs_a_directory_beside_the_sibling_is_not_touched() {
    let sb = Sandbox::new();
    someone_elses(sb.upper());
    let out = sb.run(sh("test ! -e /theirs && echo ran"));
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "ran\n"), "{out:?}");
    assert_eq!(listing(&sb.upper()), ["theirs"]);
    std::fs::remove_dir_all(sb.upper()).unwrap();
    sb.assert_clean();
}

#[test]
fn a_bad_upper_is_refused_naming_it() {
    let sb = Sandbox::new();
    let out = sb.run(["-upper", "ram", "true"]);
    let line = assert_psdock_error(&out, &[]);
    assert_eq!(line, "psdock: -upper 'ram': must be tmpfs or disk");
    sb.assert_clean();
}

#[test]
fn what_a_killed_psdock_left_without_a_state_entry_is_refused_and_kept() {
    let sb = Sandbox::new();
    let mut run = sb.spawn(sh("echo x > /mine; echo ready; sleep 1000"));
    assert_eq!(run.line(), "ready");
    let init = run.init();
    run.signal(Signal::SIGKILL);
    run.finish();
    wait_ended("the init to end", init);
    // Without the entry nothing says these are psdock's to remove.
    std::fs::remove_dir_all(sb.state_dir()).unwrap();
    let out = sb.run(["true"]);
    let line = assert_psdock_error(
        &out,
        &["-rootfs", "left behind", sb.sibling().to_str().unwrap()],
    );
    assert!(line.contains("unmount"), "{line}");
    assert_eq!(sb.mounts(), [sb.sibling(), sb.rootfs()]);
    assert_eq!(
        std::fs::read_to_string(sb.sibling().join("upper/mine")).unwrap(),
        "x\n"
    );
    // By hand, as the message says.
    for m in [sb.rootfs(), sb.sibling()] {
        nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_dir(&m).unwrap();
    }
    sb.assert_clean();
}
