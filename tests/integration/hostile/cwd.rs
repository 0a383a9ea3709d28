//! Hole 1 (the CVE-2024-21626 class): a working directory named through a
//! descriptor psdock holds (`/proc/self/fd/N`), given as `-cwd`, as an OCI
//! image's `WorkingDir` or as `psdock-exec -cwd`, must not leave the command on
//! the host: the run is refused (exit 125, naming -cwd and the value) and the
//! host's files stay unread.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::records::start;
use crate::util::*;

/// What the host's planted files hold: seen on stdout only if the command
/// read the host.
const SECRET: &str = "host-secret-5f0c2e";

/// The descriptor number psdock inherits from its parent, open on a host
/// directory holding the secret.
const INHERITED: i32 = 50;

/// Reads the secret through every way up a working directory on the host
/// could offer, and the host's /etc/shadow; prints where it ran.
const READ: &str =
    "cat marker ../marker ../../marker sub/../marker ../../../../etc/shadow 2>&1; pwd";

/// The secret beside the sandbox's rootfs and its siblings (one level up from
/// the lock's directory), and in a host directory of its own with a `sub`.
fn plant(sb: &Sandbox) -> OwnedFd {
    std::fs::write(sb.path("marker"), SECRET).unwrap();
    let dir = sb.path("hostdir");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("marker"), SECRET).unwrap();
    std::fs::File::open(&dir).unwrap().into()
}

/// `cmd` started with `dir` open as descriptor [`INHERITED`], not close-on-exec,
/// as a careless parent would leave it.
fn inherit(cmd: &mut Command, dir: &OwnedFd) {
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `raw` stays open until the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, INHERITED) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn assert_refused(out: &Output, cwd: &str, tool: &str) {
    let err = stderr(out);
    assert!(
        !stdout(out).contains(SECRET),
        "{cwd}: read the host: {out:?}"
    );
    assert!(!err.contains(SECRET), "{cwd}: read the host: {out:?}");
    assert_eq!(code(out), 125, "{cwd}: {out:?}");
    assert!(
        err.starts_with(&format!("{tool}: -cwd {cwd}: ")) && err.matches('\n').count() == 1,
        "not one clear line naming -cwd {cwd}: {err:?}"
    );
}

/// The descriptors psdock holds while its container runs, from the host's
/// view of its /proc: the numbers the container's init had open when it
/// entered its working directory (it is a clone of psdock taken before).
fn psdock_descriptors(sb: &Sandbox, dir: &OwnedFd) -> Vec<(i32, PathBuf)> {
    let mut cmd = sb.psdock();
    inherit(&mut cmd, dir);
    let mut run = Running::start(cmd.args(sh("echo ready; read x")));
    assert_eq!(run.line(), "ready");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", run.pid()))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            Some((n, std::fs::read_link(e.path()).ok()?))
        })
        .filter(|(n, _)| *n > 2)
        .collect();
    run.send_line("");
    sb.ends(run, 0);
    fds
}

/// Every descriptor number psdock may hold at that point: those seen, and a
/// margin for the pipes it opens only around the clone.
fn candidates(seen: &[(i32, PathBuf)]) -> Vec<i32> {
    let mut all: Vec<i32> = (3..=15).chain(seen.iter().map(|(n, _)| *n)).collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn cwd_through_a_descriptor_of_psdock_s_is_refused() {
    let sb = Sandbox::new();
    let dir = plant(&sb);
    let seen = psdock_descriptors(&sb, &dir);
    // The two ways out this test is about are there to be taken.
    assert!(
        seen.iter()
            .any(|(n, p)| *n == INHERITED && p == &sb.path("hostdir")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|(_, p)| p == &sb.sibling()), "{seen:?}");
    for n in candidates(&seen) {
        for cwd in [
            format!("/proc/self/fd/{n}"),
            format!("/proc/self/fd/{n}/sub"),
            format!("/proc/1/fd/{n}"),
        ] {
            let mut cmd = sb.psdock();
            inherit(&mut cmd, &dir);
            let out = output(cmd.args(["-cwd", &cwd]).args(sh(READ)));
            assert_refused(&out, &cwd, "psdock");
            sb.assert_clean();
        }
    }
    // Resolved in the container's root, an image's symlink still leads where
    // it always did (/usr/bin is `../bin` in the test image).
    let out = sb.run(["-cwd", "/usr/bin"].into_iter().chain(sh("pwd")));
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "/bin\n"),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn an_image_s_working_dir_through_a_descriptor_is_refused() {
    let sb = Sandbox::new();
    let dir = plant(&sb);
    let seen = psdock_descriptors(&sb, &dir);
    let lock = seen.iter().find(|(_, p)| p == &sb.sibling()).unwrap().0;
    let layout = sb.path("oci");
    let st = Command::new("cp")
        .arg("-a")
        .arg(crate::oci::layout())
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    for n in [lock, INHERITED] {
        let cwd = format!("/proc/self/fd/{n}");
        let tag = format!("cwd{n}");
        let st = Command::new("umoci")
            .arg("config")
            .arg("--image")
            .arg(format!("{}:plain", layout.display()))
            .args(["--tag", &tag, "--config.workingdir", &cwd])
            .status()
            .unwrap();
        assert!(st.success(), "umoci config");
        let mut cmd = sb.bare();
        cmd.arg("-i")
            .arg(&layout)
            .args(["-image-ref", &tag])
            .arg("-r")
            .arg(sb.rootfs())
            .arg("-e")
            .arg(sb.mark());
        inherit(&mut cmd, &dir);
        let out = output(cmd.args(sh(READ)));
        assert_refused(&out, &cwd, "psdock");
        sb.assert_clean();
    }
}

#[test]
fn psdock_exec_cwd_through_a_descriptor_is_refused() {
    let sb = Sandbox::new();
    let dir = plant(&sb);
    let c = start(&sb, {
        let mut cmd = sb.psdock();
        cmd.args(["sleep", "1000"]);
        cmd
    });
    let exec = Path::new(env!("CARGO_BIN_EXE_psdock-exec"));
    for n in (3..=15).chain([INHERITED]) {
        for cwd in [
            format!("/proc/self/fd/{n}"),
            format!("/proc/self/fd/{n}/sub"),
        ] {
            let mut cmd = Command::new(exec);
            cmd.env("PSDOCK_STATE_DIR", sb.state_dir())
                .arg(c.id())
                .args(["-cwd", &cwd]);
            inherit(&mut cmd, &dir);
            let out = output(cmd.args(sh(READ)));
            assert_refused(&out, &cwd, "psdock-exec");
        }
    }
    // What worked still does.
    let out = output(
        Command::new(exec)
            .env("PSDOCK_STATE_DIR", sb.state_dir())
            .arg(c.id())
            .args(["-cwd", "/usr/bin", "pwd"]),
    );
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "/bin\n"),
        "{out:?}"
    );
    drop(c);
    sb.assert_clean();
}
