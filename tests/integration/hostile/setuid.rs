//! Hole 2: what the container writes is a way into the host. Container root
//! makes a setuid-root copy of a program; a host user who is not root must not
//! become root by running it, by any path psdock makes (ROOTFS, the hidden
//! sibling, the `-upper disk` directory). Inside, the container's `/` still
//! honours setuid bits, and device nodes on it stay off.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// `nobody` on Debian: a host user other than root.
const NOBODY: u32 = 65534;

/// Every setuid file below `dir`, found as root (symlinks not followed).
fn setuid_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && meta.mode() & 0o4000 != 0 {
                found.push(e.path());
            }
        }
    }
    found
}

/// The per-mount options of the top mount at `point` in a mountinfo text.
fn options_at(mountinfo: &str, point: &Path) -> Vec<String> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .rfind(|m| m.point == point)
        .unwrap_or_else(|| panic!("nothing mounted at {point:?}"))
        .options
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_setuid_root_file_made_in_the_container_gives_host_users_nothing() {
    for upper in ["tmpfs", "disk"] {
        let sb = Sandbox::new();
        // Another host user may walk to the sandbox as to any directory: only
        // what psdock makes may keep them out.
        std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The host's `id` (coreutils), which prints its effective uid and,
        // unlike busybox, keeps a setuid elevation.
        let script = "cp /hostid /tmp/x && chmod 4755 /tmp/x && echo ready; read x";
        let mut run = sb.spawn(
            ["-upper", upper, "-v", "/usr/bin/id:/hostid:ro"]
                .into_iter()
                .chain(sh(script)),
        );
        assert_eq!(run.line(), "ready", "-upper {upper}");
        let found = setuid_files(sb.dir.path());
        assert!(
            found.contains(&sb.rootfs().join("tmp/x")),
            "-upper {upper}: {found:?}"
        );
        // Once in ROOTFS, once in the upper layer (its tmpfs or its directory).
        assert_eq!(found.len(), 2, "-upper {upper}: {found:?}");
        let mut ran = 0;
        for path in &found {
            let out = match Command::new(path)
                .arg("-u")
                .uid(NOBODY)
                .gid(NOBODY)
                .output()
            {
                // Not even reachable: as good as it gets.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => continue,
                r => r.unwrap(),
            };
            ran += 1;
            let euid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert_eq!(
                euid,
                NOBODY.to_string(),
                "-upper {upper}: host user {NOBODY} ran {path:?} as euid {euid}: {out:?}"
            );
        }
        assert!(ran > 0, "-upper {upper}: ROOTFS/tmp/x is there to run");
        // ROOTFS as the host sees it honours neither setuid bits nor devices.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let host = options_at(&mountinfo, &sb.rootfs());
        for flag in ["nosuid", "nodev"] {
            assert!(host.iter().any(|o| o == flag), "-upper {upper}: {host:?}");
        }
        run.send_line("");
        sb.ends(run, 0);
    }
}

#[test]
fn inside_the_container_its_root_honours_setuid_bits_but_not_devices() {
    for upper in ["tmpfs", "disk"] {
        let sb = Sandbox::new();
        let out = sb.run(["-upper", upper, "cat", "/proc/self/mountinfo"]);
        assert_eq!(code(&out), 0, "{out:?}");
        let options = options_at(&stdout(&out), Path::new("/"));
        assert!(
            !options.iter().any(|o| o == "nosuid"),
            "-upper {upper}: {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "nodev"),
            "-upper {upper}: {options:?}"
        );
        sb.assert_clean();
    }
}
