//! Image content that would defeat cleanup: a tree nested deeper than psdock
//! may hold descriptors, which must still go with the run (or the prune), its
//! setuid file with it; an image whose /proc, /sys or /dev is a symlink, which
//! would send the kernel's /proc or /sys where the masking does not reach.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::records;
use crate::util::*;

/// Deeper than the 1024 descriptors of the usual limit.
const DEPTH: usize = 1500;

/// `cmd` with `resource` (an `RLIMIT_*`) limited to `value`, so that what the
/// test plays against fails loudly instead of taking the machine's.
pub(super) fn limited(cmd: &mut Command, resource: u32, value: u64) -> &mut Command {
    // SAFETY: only setrlimit(2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource as _, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Runs under the usual descriptor limit, whatever the test runner's is.
fn with_usual_fd_limit(cmd: &mut Command) -> &mut Command {
    limited(cmd, libc::RLIMIT_NOFILE, 1024)
}

/// The container nests DEPTH directories in its upper directory and leaves a
/// setuid copy of busybox at the bottom.
fn deep_tree_script() -> String {
    let path = "d/".repeat(DEPTH);
    format!("mkdir -p /{path} && cp /bin/busybox /{path}x && chmod 4755 /{path}x && echo made")
}

#[test]
fn a_tree_deeper_than_the_descriptor_limit_goes_with_the_run() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-upper", "disk"]).args(sh(&deep_tree_script()));
    let out = output(with_usual_fd_limit(&mut cmd));
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "made\n"),
        "{out:?}"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    sb.assert_clean();
}

#[test]
fn a_tree_deeper_than_the_descriptor_limit_goes_with_the_prune() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    let script = format!("{} && touch /done && sleep 1000", deep_tree_script());
    cmd.args(["-upper", "disk"]).args(sh(&script));
    let mut c = records::start(&sb, cmd);
    wait_for("the container's tree", || {
        sb.upper().join("layer/done").exists().then_some(())
    });
    let init = c.init_pid();
    c.kill();
    wait_ended("the init to end", init);
    let mut prune = Command::new(records::ls_bin());
    prune.env("PSDOCK_STATE_DIR", sb.state_dir()).arg("--prune");
    let out = output(with_usual_fd_limit(&mut prune));
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("reclaimed "), "{out:?}");
    sb.assert_clean();
}

#[test]
fn an_image_whose_proc_sys_or_dev_is_a_symlink_is_refused() {
    let sb = Sandbox::new();
    for dir in ["proc", "sys", "dev"] {
        let image = sb.image_copy(&format!("image-{dir}"));
        let _ = std::fs::remove_dir(image.join(dir));
        std::os::unix::fs::symlink("/etc", image.join(dir)).unwrap();
        let out = output(sb.psdock_with(&image).args(["cat", "/etc/passwd"]));
        assert_psdock_error(
            &out,
            &[
                &format!("the image's /{dir} is a symlink (to /etc)"),
                "CVE-2019-19921",
            ],
        );
        assert!(out.stdout.is_empty(), "{out:?}");
        sb.assert_clean();
    }
}
