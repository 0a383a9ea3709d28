//! The harness: the test image (built once), a sandbox directory per test, and
//! checks that a run left nothing behind.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn psdock() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock"))
}

/// The busybox image, built once per target directory by `scripts/busybox-image.sh`.
pub fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the integration tests start real containers and must run as root"
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-image");
        if !dir.join("bin/busybox").exists() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
            let tmp = dir.with_extension(format!("building.{}", std::process::id()));
            let out = Command::new("sh").arg(&script).arg(&tmp).output().unwrap();
            assert!(
                out.status.success(),
                "building the image: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Another test binary may have finished first: either copy will do.
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = Command::new("rm").arg("-rf").arg(&tmp).status();
            }
        }
        dir
    })
}

/// A directory of one test's own: its rootfs, state directory and files.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        image();
        Self {
            dir: tempfile::Builder::new()
                .prefix("psdock-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path("rootfs")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// `psdock` with nothing set but the state directory.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(psdock());
        cmd.env("PSDOCK_STATE_DIR", self.state_dir());
        cmd
    }

    /// `psdock -i IMAGE -r ROOTFS` with this sandbox's rootfs; add flags and the command.
    pub fn psdock(&self) -> Command {
        let mut cmd = self.bare();
        cmd.arg("-i").arg(image()).arg("-r").arg(self.rootfs());
        cmd
    }

    /// Runs `psdock -i IMAGE -r ROOTFS ARGS...` to the end.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.psdock().args(args).output().unwrap()
    }

    /// Nothing of a run is left: no mount below the sandbox, no rootfs, no
    /// hidden sibling.
    pub fn assert_clean(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = self.dir.path().to_str().unwrap();
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(here)).collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        assert!(!self.rootfs().exists(), "rootfs left behind");
        assert!(
            !self.path(".rootfs.psdock").exists(),
            "hidden sibling left behind"
        );
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code, with the output in the panic message when there is none.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("psdock died by a signal: {out:?}"))
}
