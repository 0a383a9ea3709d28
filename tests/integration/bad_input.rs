//! Bad input: exit 125, one `psdock: ` line naming the flag and the value, and
//! nothing left behind: no mount, no directory, no state entry, no process.

use std::ffi::OsString;

use crate::util::*;

/// Runs psdock with exactly `args` (no -i/-r added) and checks the error line.
fn rejects(sb: &Sandbox, args: &[OsString], names: &[&str]) -> String {
    let out = output(sb.bare().args(args));
    let line = assert_psdock_error(&out, names);
    assert!(out.stdout.is_empty(), "{out:?}");
    line
}

fn os(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// `-i IMAGE -r ROOTFS -e MARK`, then `rest`.
fn with_base(sb: &Sandbox, rest: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "-i".into(),
        image().into(),
        "-r".into(),
        sb.rootfs().into(),
        "-e".into(),
        sb.mark(),
    ];
    v.extend(os(rest));
    v
}

/// Each case is a fresh sandbox that must be clean afterwards.
fn case(rest: &[&str], names: &[&str]) {
    let sb = Sandbox::new();
    rejects(&sb, &with_base(&sb, rest), names);
    sb.assert_clean();
}

#[test]
fn unknown_flags() {
    case(&["-nope", "true"], &["unknown flag -nope"]);
    case(&["--hostnam=x", "true"], &["--hostnam=x"]);
    case(&["-ee", "A=1", "true"], &["-ee"]);
}

#[test]
fn bad_kill_timeouts() {
    const WHY: &str = "must be at least 1 or -1 for never";
    for bad in ["soon", "0", "-0", "-2", "1.5", "99999999999999999999999"] {
        case(
            &["-kill-timeout", bad, "true"],
            &["-kill-timeout", &format!("'{bad}'"), WHY],
        );
        case(
            &[&format!("-kill-timeout={bad}"), "true"],
            &["-kill-timeout", bad, WHY],
        );
    }
}

#[test]
fn missing_image_rootfs_or_command() {
    let sb = Sandbox::new();
    let line = rejects(
        &sb,
        &[OsString::from("-r"), sb.rootfs().into(), "true".into()],
        &["-image"],
    );
    assert_eq!(line, "psdock: missing required flag -image (-i)");
    rejects(
        &sb,
        &[OsString::from("-i"), image().into(), "true".into()],
        &["-rootfs"],
    );
    rejects(&sb, &with_base(&sb, &[]), &["no command"]);
    rejects(&sb, &with_base(&sb, &["-hostname", "x"]), &["no command"]);
    // A flag with its value missing at the very end.
    let line = rejects(&sb, &with_base(&sb, &["-hostname"]), &[]);
    assert_eq!(line, "psdock: -hostname needs a value");
    sb.assert_clean();
}

#[test]
fn image_missing_or_not_a_directory() {
    let sb = Sandbox::new();
    let missing = sb.path("no-image");
    let file = sb.path("image-file");
    std::fs::write(&file, "not an image").unwrap();
    for (img, why) in [(&missing, "No such file"), (&file, "not a directory")] {
        let args = [
            OsString::from("-i"),
            img.into(),
            "-r".into(),
            sb.rootfs().into(),
            "true".into(),
        ];
        rejects(&sb, &args, &["-image", img.to_str().unwrap(), why]);
        sb.assert_clean();
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not an image");
}

#[test]
fn a_non_empty_rootfs_or_a_file_is_rejected_and_left_untouched() {
    let sb = Sandbox::new();
    let root = sb.rootfs();
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("precious"), "keep me").unwrap();
    let before = tree_snapshot(&root);
    rejects(
        &sb,
        &with_base(&sb, &["true"]),
        &["-rootfs", root.to_str().unwrap(), "not empty"],
    );
    assert_eq!(tree_snapshot(&root), before);
    sb.assert_clean_but_rootfs();

    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, "a file").unwrap();
    let before = tree_snapshot(&root);
    rejects(
        &sb,
        &with_base(&sb, &["true"]),
        &["-rootfs", root.to_str().unwrap(), "not a directory"],
    );
    assert_eq!(tree_snapshot(&root), before);
    sb.assert_clean_but_rootfs();

    // A symlink to an empty directory is not an empty directory.
    std::fs::remove_file(&root).unwrap();
    std::fs::create_dir(sb.path("empty")).unwrap();
    std::os::unix::fs::symlink(sb.path("empty"), &root).unwrap();
    rejects(
        &sb,
        &with_base(&sb, &["true"]),
        &["-rootfs", root.to_str().unwrap()],
    );
    assert!(std::fs::symlink_metadata(&root)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(sb.path("empty")).unwrap().count(), 0);
    sb.assert_clean_but_rootfs();
}

#[test]
fn a_rootfs_whose_parent_is_missing_or_inside_the_image() {
    let sb = Sandbox::new();
    let orphan = sb.path("no/parent/rootfs");
    let args = [
        OsString::from("-i"),
        image().into(),
        "-r".into(),
        orphan.clone().into(),
        "true".into(),
    ];
    rejects(&sb, &args, &["-rootfs", orphan.to_str().unwrap()]);
    assert!(!sb.path("no").exists());

    let image = sb.image_copy("img");
    let before = tree_snapshot(&image);
    let inside = image.join("tmp/rootfs");
    let args = [
        OsString::from("-i"),
        image.clone().into(),
        "-r".into(),
        inside.clone().into(),
        "true".into(),
    ];
    rejects(&sb, &args, &["-rootfs", inside.to_str().unwrap()]);
    assert_eq!(tree_snapshot(&image), before);
    sb.assert_clean();
}

#[test]
fn bad_bind_mounts() {
    let sb = Sandbox::new();
    let src = sb.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("keep"), "keep").unwrap();
    let s = src.to_str().unwrap();
    let missing = format!("{}:/data", sb.path("missing").display());
    for bad in [
        s.to_owned(),
        format!("{s}:data"),
        format!("{s}:/data:rx"),
        format!("{s}:/data:ro:rw"),
        format!("{s}:/"),
        format!("{s}:/a/../b"),
        "src:/data".to_owned(),
        missing,
    ] {
        for flag in ["-bind-mount", "-v"] {
            let args = with_base(&sb, &[flag, &bad, "true"]);
            rejects(&sb, &args, &["-bind-mount", &bad]);
            sb.assert_clean();
        }
    }
    assert_eq!(std::fs::read_to_string(src.join("keep")).unwrap(), "keep");
}

#[test]
fn a_bind_mount_that_fails_inside_the_container_is_cleaned_up() {
    let sb = Sandbox::new();
    let file = sb.path("file");
    std::fs::write(&file, "x").unwrap();
    // A file cannot be mounted over the image's /etc directory.
    let value = format!("{}:/etc", file.display());
    rejects(
        &sb,
        &with_base(&sb, &["-v", &value, "true"]),
        &["-bind-mount", &value],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    sb.assert_clean();
}

#[test]
fn bad_users() {
    for (bad, why) in [
        ("nosuchuser", "no user `nosuchuser`"),
        ("psdtest:nosuchgroup", "no group `nosuchgroup`"),
        (":", "empty"),
        ("psdtest:", "empty"),
        (":4712", "empty"),
        // The host's own users are not the image's.
        ("daemon", "no user `daemon`"),
    ] {
        case(&["-user", bad, "true"], &["-user", bad, why]);
    }
}

#[test]
fn bad_hostnames() {
    let long = "a".repeat(65);
    for bad in ["bad_name", "has space", ".dot", &long] {
        case(&["-hostname", bad, "true"], &["-hostname", bad]);
    }
    case(&["-hostname=", "true"], &["-hostname \"\""]);
    // Allowed characters, but read as the value where a flag was likely meant.
    let sb = Sandbox::new();
    let line = rejects(&sb, &with_base(&sb, &["-hostname", "-x", "true"]), &[]);
    assert_eq!(
        line,
        "psdock: -hostname \"-x\": must start with a letter or digit"
    );
    sb.assert_clean();
}

#[test]
fn a_bad_choice_is_named_as_go_style_with_the_valid_values() {
    // However the flag was typed, it is named as psdock's help and README
    // spell it, with the values it takes.
    for typed in [
        &["-upper", "ram"][..],
        &["--upper", "ram"],
        &["--upper=ram"],
    ] {
        let sb = Sandbox::new();
        let mut args = typed.to_vec();
        args.push("true");
        let line = rejects(&sb, &with_base(&sb, &args), &[]);
        assert_eq!(
            line, "psdock: -upper 'ram': must be tmpfs or disk",
            "{typed:?}"
        );
        sb.assert_clean();
    }
    let sb = Sandbox::new();
    let line = rejects(&sb, &with_base(&sb, &["-upper"]), &[]);
    assert_eq!(line, "psdock: -upper needs a value: tmpfs or disk");
    let line = rejects(&sb, &with_base(&sb, &["--bind-port=http", "true"]), &[]);
    assert!(line.starts_with("psdock: -bind-port 'http': "), "{line}");
    sb.assert_clean();
}

#[test]
fn bad_working_directories() {
    for bad in ["tmp", "./tmp", "/tmp/../etc"] {
        case(&["-cwd", bad, "true"], &["-cwd", bad]);
    }
    // Absolute but absent in the image: found out inside the container.
    case(
        &["-cwd", "/no/such/dir", "true"],
        &["-cwd /no/such/dir", "No such file"],
    );
    case(
        &["-cwd", "/etc/passwd", "true"],
        &["-cwd /etc/passwd", "Not a directory"],
    );
}

#[test]
fn bad_capabilities() {
    case(
        &["-cap-add", "NET_RAWW", "true"],
        &["-cap-add NET_RAWW: no such capability"],
    );
    case(
        &["--cap-drop=CAP_", "true"],
        &["-cap-drop CAP_: no such capability"],
    );
    case(
        &["-cap-add", "CHOWN", "-cap-add", "", "true"],
        &["-cap-add : no such capability"],
    );
    // A capability past the kernel's last, when there is a name for one.
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if last < 40 {
        case(
            &["-cap-add", "CHECKPOINT_RESTORE", "true"],
            &["-cap-add CHECKPOINT_RESTORE: this kernel does not have it"],
        );
    }
}

#[test]
fn bad_env_files_and_env_entries() {
    let sb = Sandbox::new();
    let missing = sb.path("no-env-file");
    let m = missing.to_str().unwrap();
    rejects(
        &sb,
        &with_base(&sb, &["-env-file", m, "true"]),
        &["-env-file", m, "No such file"],
    );
    let bad = sb.path("bad.env");
    std::fs::write(&bad, "# fine\nGOOD=1\nBAD KEY=2\n").unwrap();
    let b = bad.to_str().unwrap();
    rejects(
        &sb,
        &with_base(&sb, &["-env-file", b, "true"]),
        &["-env-file", b, "line 3"],
    );
    std::fs::write(&bad, "=value\n").unwrap();
    rejects(
        &sb,
        &with_base(&sb, &["-env-file", b, "true"]),
        &["-env-file", b, "line 1"],
    );
    let dir = sb.path("a-dir");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    rejects(
        &sb,
        &with_base(&sb, &["-env-file", d, "true"]),
        &["-env-file", d],
    );
    for empty_key in ["=x", "="] {
        rejects(
            &sb,
            &with_base(&sb, &["-e", empty_key, "true"]),
            &["-env", empty_key, "empty"],
        );
    }
    rejects(
        &sb,
        &with_base(&sb, &["-e", "", "true"]),
        &["-env", "empty"],
    );
    sb.assert_clean();
}

#[test]
fn values_are_checked_before_anything_is_created() {
    // psdock blocks reading an -env-file that is a FIFO: while it does, it is in
    // the middle of validation, and nothing may exist yet. The bad -hostname
    // after it then fails the run.
    let sb = Sandbox::new();
    let fifo = sb.fifo("env");
    let mut args = with_base(&sb, &["-hostname", "bad_name", "true"]);
    args.splice(0..0, [OsString::from("-env-file"), fifo.clone().into()]);
    let mut cmd = sb.bare();
    cmd.args(&args);
    let run = Running::start(&mut cmd);
    run.wait_fifo_open();
    assert!(!sb.rootfs().exists() && !sb.sibling().exists());
    std::fs::write(&fifo, "A=1\n").unwrap();
    let out = run.finish();
    assert_psdock_error(&out, &["-hostname", "bad_name"]);
    sb.assert_clean();
}
