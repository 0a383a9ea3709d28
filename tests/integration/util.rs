//! The harness: the test image (built once), a sandbox directory per test, running
//! psdocks driven from the test, and checks that a run left nothing behind.
//!
//! Every psdock a sandbox starts, and every process of its container, carries the
//! environment entry [`Sandbox::mark`]: that is how processes are found in /proc,
//! whatever their name or namespace.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long anything a test waits for may take before the test fails: generous,
/// since the suite shares two cores with other builds.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn psdock() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock"))
}

/// The busybox image, built once per target directory and script version by
/// `scripts/busybox-image.sh` (a changed script gets a fresh image).
pub fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the integration tests start real containers and must run as root"
        );
        built_once("busybox-image", "bin/busybox", "busybox-image.sh", &[])
    })
}

/// The Rust program at `src` (relative to the crate), compiled statically
/// (the test image has no C library) under `CARGO_TARGET_TMPDIR`, once per
/// version of its source.
pub fn static_program(src: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let name = src.file_stem().unwrap().to_string_lossy().replace('_', "-");
    let version = fnv1a(&std::fs::read(&src).unwrap());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join(format!("{name}-{version:016x}"));
    if out.exists() {
        return out;
    }
    // Another test binary may build it at the same time: build aside.
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let built = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "building {}: {}",
        src.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// `CARGO_TARGET_TMPDIR/NAME-VERSION`, made by `scripts/SCRIPT ARGS... DIR` unless
/// it already has `done` (a path inside it). VERSION hashes the script and its
/// arguments: a changed script gets a fresh build.
pub fn built_once(name: &str, done: &str, script: &str, args: &[&OsStr]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let mut key = std::fs::read(&script).unwrap();
    for a in args {
        key.extend_from_slice(a.as_bytes());
        key.push(0);
    }
    let version = fnv1a(&key);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{version:016x}"));
    if !dir.join(done).exists() {
        let tmp = dir.with_extension(format!("building.{}", std::process::id()));
        let out = Command::new("sh")
            .arg(&script)
            .args(args)
            .arg(&tmp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test binary may have finished first: either copy will do.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = Command::new("rm").arg("-rf").arg(&tmp).status();
        }
    }
    dir
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A directory of one test's own: its rootfs, state directory and files.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
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

    /// The hidden sibling psdock keeps next to [`Self::rootfs`]: overlay's work
    /// directory, and the lock.
    pub fn sibling(&self) -> PathBuf {
        self.path(".rootfs.psdock")
    }

    /// The hidden upper directory next to [`Self::sibling`].
    pub fn upper(&self) -> PathBuf {
        self.path(".rootfs.psdock-upper")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// `KEY=VALUE` carried by every process this sandbox starts.
    pub fn mark(&self) -> OsString {
        let mut m = OsString::from("PSDOCK_TEST_MARK=");
        m.push(self.dir.path());
        m
    }

    /// `psdock` with nothing set but the state directory and the mark.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(psdock());
        self.mark_command(&mut cmd);
        cmd
    }

    /// The sandbox's own layer cache: OCI images and tarballs are unpacked
    /// there, never into the host's /var/lib/psdock.
    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// Marks a command as this sandbox's (for a psdock binary other than the built one).
    pub fn mark_command(&self, cmd: &mut Command) {
        cmd.env("PSDOCK_STATE_DIR", self.state_dir())
            .env("PSDOCK_CACHE_DIR", self.cache_dir())
            .env("PSDOCK_TEST_MARK", self.dir.path());
    }

    /// `psdock -i IMAGE -r ROOTFS -e MARK` with this sandbox's rootfs; add flags
    /// and the command.
    pub fn psdock(&self) -> Command {
        self.psdock_with(image())
    }

    /// Like [`Self::psdock`] with another image.
    pub fn psdock_with(&self, image: &Path) -> Command {
        let mut cmd = self.bare();
        cmd.arg("-i")
            .arg(image)
            .arg("-r")
            .arg(self.rootfs())
            .arg("-e")
            .arg(self.mark());
        cmd
    }

    /// Runs `psdock -i IMAGE -r ROOTFS ARGS...` to the end, stdin empty.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output(self.psdock().args(args))
    }

    /// Runs `sh -c SCRIPT` in a container, expects exit 0, and returns its
    /// output split at lines `--`.
    pub fn sections(&self, script: &str) -> Vec<String> {
        let out = self.run(sh(script));
        assert_eq!(code(&out), 0, "{out:?}");
        stdout(&out).split("--\n").map(str::to_owned).collect()
    }

    /// Starts `psdock -i IMAGE -r ROOTFS ARGS...` with piped stdio.
    pub fn spawn<I, S>(&self, args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Running::start(self.psdock().args(args))
    }

    /// A FIFO in the sandbox, for psdock to block on while it reads its flags.
    pub fn fifo(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        path
    }

    /// Waits for `run` to end, expects exit `code`, and that nothing is left.
    pub fn ends(&self, run: Running, code: i32) -> Output {
        let out = run.finish();
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        self.assert_clean();
        out
    }

    /// A private copy of the test image, to change or to watch.
    pub fn image_copy(&self, name: &str) -> PathBuf {
        let copy = self.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(image())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(st.success(), "copying the image");
        copy
    }

    /// Live (not zombie) processes carrying this sandbox's mark, as `(pid, name)`.
    pub fn processes(&self) -> Vec<(i32, String)> {
        let mark = self.mark();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if !env.split(|&b| b == 0).any(|e| e == mark.as_bytes()) {
                continue;
            }
            if let Some(st) = status(pid) {
                if !matches!(field(&st, "State").chars().next(), Some('Z' | 'X')) {
                    found.push((pid, field(&st, "Name").to_owned()));
                }
            }
        }
        found
    }

    /// Nothing of a run is left: no mount below the sandbox, no rootfs, no hidden
    /// siblings, no state entry, no process.
    pub fn assert_clean(&self) {
        self.assert_clean_but_rootfs();
        assert!(!self.rootfs().exists(), "rootfs left behind");
    }

    /// [`Self::assert_clean`] for a run whose rootfs was not psdock's to remove.
    pub fn assert_clean_but_rootfs(&self) {
        let left = self.mounts();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
        assert!(!self.sibling().exists(), "hidden sibling left behind");
        assert!(!self.upper().exists(), "hidden upper directory left behind");
        // `net/` stays (the lock, a directory per bridge), without a lease.
        let state: Vec<_> = std::fs::read_dir(self.state_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let net = self.state_dir().join("net");
        let state: Vec<_> = state.into_iter().filter(|p| *p != net).collect();
        assert!(state.is_empty(), "state entries left behind: {state:?}");
        let leases: Vec<_> = std::fs::read_dir(&net)
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).collect())
            .unwrap_or_else(|_| Vec::new())
            .into_iter()
            .flat_map(|b| std::fs::read_dir(b.path()).unwrap().flatten())
            .map(|e| e.path())
            .collect();
        assert!(leases.is_empty(), "address leases left behind: {leases:?}");
        let procs = self.processes();
        assert!(procs.is_empty(), "processes left running: {procs:?}");
    }

    /// Mount points at or below the sandbox, in psdock's (the host's) namespace.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let here = self.dir.path();
        mount_points(&std::fs::read_to_string("/proc/self/mountinfo").unwrap())
            .into_iter()
            .filter(|m| m.starts_with(here))
            .collect()
    }
}

impl Drop for Sandbox {
    /// A failed test must not leave processes or mounts for the next ones, nor
    /// let the temp dir's removal walk through a mounted overlay.
    fn drop(&mut self) {
        for (pid, _) in self.processes() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for m in self.mounts().iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// One line of a mountinfo text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub point: PathBuf,
    /// Per-mount options (`rw`/`ro`, `nosuid`, ...).
    pub options: String,
    pub fstype: String,
}

/// The entries of a mountinfo text, mount points' octal escapes decoded.
pub fn parse_mountinfo(mountinfo: &str) -> Vec<MountEntry> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some(MountEntry {
                point: PathBuf::from(OsString::from_vec(unescape(f.get(4)?))),
                options: f.get(5)?.to_string(),
                fstype: right.split(' ').next()?.to_owned(),
            })
        })
        .collect()
}

/// The mount points listed in a mountinfo text.
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .map(|m| m.point)
        .collect()
}

/// Whether a mount's options make it read-only.
pub fn read_only(m: &MountEntry) -> bool {
    m.options.split(',').any(|o| o == "ro")
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|_| b[i] == b'\\')
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// `/proc/PID/status`, if the process exists.
pub fn status(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// A field of a `/proc/PID/status` text, without its name.
pub fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// Whether bit `sig` is set in a hex signal mask field of a status text.
pub fn mask_has(status: &str, name: &str, sig: Signal) -> bool {
    let mask = u64::from_str_radix(field(status, name), 16).unwrap();
    mask & (1 << (sig as i32 - 1)) != 0
}

/// Polls `f` until it gives a value; fails the test after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until process `pid` has ended (gone, or a zombie not yet reaped).
pub fn wait_ended(what: &str, pid: i32) {
    wait_for(what, || {
        status(pid)
            .is_none_or(|st| field(&st, "State").starts_with('Z'))
            .then_some(())
    });
}

/// Runs a command to the end with empty stdin, failing the test after [`DEADLINE`].
pub fn output(cmd: &mut Command) -> Output {
    let mut r = Running::start(cmd);
    drop(r.child.stdin.take());
    r.finish()
}

/// A psdock running under the test's control: stdin and stdout are pipes the test
/// writes and reads line by line, stderr is collected at the end.
pub struct Running {
    pub child: Child,
    pidfd: OwnedFd,
    out: Vec<u8>,
    err: Vec<u8>,
    done: bool,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Running {
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // SAFETY: plain system call; the result is a new descriptor we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id(), 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Running {
            child,
            pidfd,
            out: Vec::new(),
            err: Vec::new(),
            done: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// The next line psdock's stdout carries, without its newline.
    pub fn line(&mut self) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = self.out.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.out.drain(..=i).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            let stdout = self.child.stdout.as_mut().unwrap();
            wait_readable(stdout.as_fd(), end, "a line on psdock's stdout");
            let mut buf = [0u8; 4096];
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                let got = String::from_utf8_lossy(&self.out).into_owned();
                let out = self.wait_end();
                panic!("psdock's stdout ended before a line; got {got:?}, then {out:?}");
            }
            self.out.extend_from_slice(&buf[..n]);
        }
    }

    /// Writes one line to psdock's (and so the container's) stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Waits until psdock blocks opening a FIFO (no writer yet).
    pub fn wait_fifo_open(&self) {
        let wchan = format!("/proc/{}/wchan", self.pid());
        wait_for("psdock to block opening a FIFO", || {
            (std::fs::read_to_string(&wchan).ok()? == "wait_for_partner").then_some(())
        });
    }

    /// The container's init (PID 1 inside) as the host sees it, once it has
    /// executed the command.
    pub fn init(&self) -> i32 {
        let me = self.pid();
        wait_for("the container's init to run the command", || {
            let children =
                std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).ok()?;
            children
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .find(|&pid: &i32| {
                    status(pid).is_some_and(|st| {
                        field(&st, "NSpid").ends_with("\t1") && field(&st, "Name") != "psdock"
                    })
                })
        })
    }

    /// Waits for psdock to exit (failing the test after [`DEADLINE`]) and returns
    /// its status and the rest of its output. The pipes are drained meanwhile,
    /// and must reach end-of-file: a process that escaped the container and
    /// still holds them fails the test.
    pub fn finish(mut self) -> Output {
        self.wait_end()
    }

    fn wait_end(&mut self) -> Output {
        use nix::poll::{poll, PollFd, PollFlags};
        drop(self.child.stdin.take());
        let end = Instant::now() + DEADLINE;
        let mut stdout = self.child.stdout.take().unwrap();
        let mut stderr = self.child.stderr.take().unwrap();
        let (mut exited, mut out_open, mut err_open) = (false, true, true);
        while !exited || out_open || err_open {
            let mut fds = Vec::new();
            let mut tags = Vec::new();
            for (open, fd, tag) in [
                (!exited, self.pidfd.as_fd(), 0),
                (out_open, stdout.as_fd(), 1),
                (err_open, stderr.as_fd(), 2),
            ] {
                if open {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                    tags.push(tag);
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            let n = poll(&mut fds, timeout(left)).unwrap();
            assert!(
                n > 0,
                "psdock (or its output) did not end within {DEADLINE:?} (exited: {exited}); \
                 stdout {:?}, stderr {:?}",
                String::from_utf8_lossy(&self.out),
                String::from_utf8_lossy(&self.err),
            );
            let ready: Vec<i32> = fds
                .iter()
                .zip(&tags)
                .filter(|(f, _)| f.any().unwrap_or(false))
                .map(|(_, t)| *t)
                .collect();
            drop(fds);
            for tag in ready {
                match tag {
                    0 => exited = true,
                    1 => out_open = read_some(&mut stdout, &mut self.out),
                    _ => err_open = read_some(&mut stderr, &mut self.err),
                }
            }
        }
        let status: ExitStatus = self.child.wait().unwrap();
        self.done = true;
        Output {
            status,
            stdout: std::mem::take(&mut self.out),
            stderr: std::mem::take(&mut self.err),
        }
    }
}

/// Reads what is there; false at end-of-file.
fn read_some(pipe: &mut impl Read, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    let n = pipe.read(&mut buf).unwrap();
    into.extend_from_slice(&buf[..n]);
    n > 0
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn timeout(d: Duration) -> nix::poll::PollTimeout {
    nix::poll::PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap()
}

fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, end: Instant, what: &str) {
    let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    let left = end.saturating_duration_since(Instant::now());
    let n = nix::poll::poll(&mut fds, timeout(left)).unwrap();
    assert!(n > 0, "timed out waiting for {what}");
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

/// Asserts psdock's own failure: exit 125 and exactly one stderr line starting
/// `psdock: ` that contains every one of `names`. Returns the line.
pub fn assert_psdock_error(out: &Output, names: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(code(out), 125, "stderr: {err}");
    assert!(
        err.starts_with("psdock: ") && err.ends_with('\n') && err.matches('\n').count() == 1,
        "not one `psdock: ` line: {err:?}"
    );
    for n in names {
        assert!(err.contains(n), "{err:?} does not name {n:?}");
    }
    err.trim_end().to_owned()
}

/// A snapshot of a directory tree: every entry's type, mode, owner, size,
/// times (not atime), link target and content, to show that nothing changed.
pub fn tree_snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let what = if m.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_file() {
            format!("hash {:016x}", fnv1a(&std::fs::read(&p).unwrap()))
        } else {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            names.sort();
            stack.extend(names);
            "dir".to_owned()
        };
        out.push(format!(
            "{rel} {:o} {}:{} {} m{}.{} c{}.{} ino{} {what}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.ino(),
        ));
    }
    out
}

/// `sh -c SCRIPT` as container command words.
pub fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

/// Bytes read from `reader` by a thread, as they come.
#[derive(Clone, Default)]
pub struct Collected(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Collected {
    /// Starts a thread that appends everything `reader` yields until it ends or fails.
    pub fn from(
        mut reader: impl std::io::Read + Send + 'static,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let c = Collected::default();
        let sink = c.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (c, t)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits until the text read so far contains `needle`.
    pub fn wait_for(&self, needle: &str) {
        wait_for(&format!("{needle:?} (got {:?})", self.text()), || {
            self.text().contains(needle).then_some(())
        });
    }
}
