//! Hole 3 (the CVE-2019-5736 class): a container whose `/bin/sh` is
//! `#!/proc/self/exe` makes the host's psdock-exec (or psdock, as the
//! container's init) run inside it; another process of the container opens
//! `/proc/<pid>/exe` and writes the host's binary through it. The binaries
//! must stay byte for byte what they were, and no handle the container gets
//! on them may be writable.
//!
//! Each test runs private copies of psdock and psdock-exec, so that a failure
//! cannot damage the build. The hijacked binary is held where the attacker
//! can see it, deterministically: its stderr is a pipe the test filled, so
//! its error message blocks until the test drains the pipe.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

const HIJACK: &str = "#!/proc/self/exe\n";

/// Copies of the built psdock and psdock-exec in the sandbox.
fn private_binaries(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let dir = sb.path("bin");
    std::fs::create_dir(&dir).unwrap();
    let copy = |from: &Path, name: &str| {
        let to = dir.join(name);
        std::fs::copy(from, &to).unwrap();
        to
    };
    (
        copy(psdock(), "psdock"),
        copy(Path::new(env!("CARGO_BIN_EXE_psdock-exec")), "psdock-exec"),
    )
}

/// An image whose /bin/sh runs whatever /proc/self/exe is, and which ships
/// the shared libraries `binaries` need, as most images ship glibc (a static
/// psdock, as scripts/build-release.sh makes it, needs none).
fn hijacking_image(sb: &Sandbox, binaries: &[&Path]) -> PathBuf {
    let image = sb.image_copy("img");
    for bin in binaries {
        let out = Command::new("ldd").arg(bin).output().unwrap();
        for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Some(rel) = word.strip_prefix('/') {
                let to = image.join(rel);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(word, &to).unwrap();
            }
        }
    }
    let sh = image.join("bin/sh");
    std::fs::remove_file(&sh).unwrap();
    std::fs::write(&sh, HIJACK).unwrap();
    std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
    image
}

/// A pipe whose buffer is full: the first write to its write end blocks until
/// the reader drains it. Returns (read end, write end).
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let fl = |on: bool| {
        let flags = if on { libc::O_NONBLOCK } else { 0 };
        // SAFETY: plain fcntl on our own descriptor.
        assert_eq!(
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETFL, flags) },
            0
        );
    };
    fl(true);
    let chunk = [b'.'; 4096];
    while nix::unistd::write(&w, &chunk).is_ok() {}
    fl(false);
    (r, w)
}

/// Drains the pipe to its end in a thread: unblocks the hijacked binary.
fn drain(r: OwnedFd) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        std::fs::File::from(r).read_to_end(&mut all).unwrap();
        all
    })
}

/// Busybox's shell, named so: /bin/sh is the hijacker.
const BB: &str = "/bin/busybox";

/// Finds the process running the hijacked binary (its exe is not busybox),
/// opens its exe, says so, and once it is gone tries to write through the
/// handle. The write's outcome ends in a line `write: ...`.
const ATTACK_AFTER_EXIT: &str = r#"
echo ready
while :; do
  for p in /proc/[0-9]*; do
    l=$(readlink $p/exe 2>/dev/null)
    case "$l" in ""|/bin/busybox) continue;; esac
    [ -r $p/exe ] || continue
    exec 3<$p/exe
    echo "opened $p $l"
    while [ -e $p ]; do :; done
    # The host's psdock-exec runs the same file until it has reaped $p.
    while :; do
      if { echo pwned >> /proc/self/fd/3; } 2>/tmp/err; then echo "write: done"; exit 0; fi
      grep -q "Text file busy" /tmp/err || break
    done
    echo "write: $(cat /tmp/err)"
    exit 0
  done
done
"#;

/// Private copies of the binaries, their contents now, and the hijacking image.
struct Attack {
    sb: Sandbox,
    psdock: PathBuf,
    exec: PathBuf,
    before: Vec<Vec<u8>>,
    image: PathBuf,
}

impl Attack {
    fn new() -> Self {
        let sb = Sandbox::new();
        let (psdock, exec) = private_binaries(&sb);
        let image = hijacking_image(&sb, &[&psdock, &exec]);
        let mut attack = Attack {
            sb,
            psdock,
            exec,
            before: Vec::new(),
            image,
        };
        attack.before = attack.contents();
        attack
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        [&self.psdock, &self.exec]
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// The private psdock on the hijacking image, marked as the sandbox's.
    fn psdock(&self, command: &[&str]) -> Command {
        let mut cmd = Command::new(&self.psdock);
        self.sb.mark_command(&mut cmd);
        cmd.arg("-i")
            .arg(&self.image)
            .arg("-r")
            .arg(self.sb.rootfs())
            .arg("-e")
            .arg(self.sb.mark())
            .args(command);
        cmd
    }

    /// The private psdock-exec into the container `id`.
    fn exec(&self, id: &str, command: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exec);
        cmd.env("PSDOCK_STATE_DIR", self.sb.state_dir())
            .arg(id)
            .args(command);
        cmd
    }

    /// The id of the container that the psdock with this pid runs.
    fn id(&self, pid: u32) -> String {
        crate::records::wait_for("the container's state entry", || {
            crate::records::ls_json(&self.sb, false)
                .into_iter()
                .find(|r| r["pid"].as_i64() == Some(pid.into()))
                .and_then(|r| r["id"].as_str().map(str::to_owned))
        })
    }

    /// Both binaries unchanged, and the write refused by the mount.
    fn assert_held(&self, opened: &str, wrote: &str) {
        assert!(
            self.contents() == self.before,
            "a host binary was changed ({opened}; {wrote})"
        );
        assert!(
            wrote.starts_with("write: ") && wrote.contains("Read-only file system"),
            "{opened}: {wrote}"
        );
    }
}

#[test]
fn psdock_exec_run_by_a_hijacked_sh_cannot_be_overwritten() {
    let a = Attack::new();
    let mut run = Running::start(&mut a.psdock(&[BB, "sh", "-c", ATTACK_AFTER_EXIT]));
    assert_eq!(run.line(), "ready");
    let id = a.id(run.pid() as u32);
    let (r, w) = full_pipe();
    let mut exec = a
        .exec(&id, &["sh"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(w))
        .spawn()
        .unwrap();
    let opened = run.line();
    assert!(opened.starts_with("opened "), "{opened}");
    let drained = drain(r);
    let wrote = run.line();
    exec.wait().unwrap();
    drained.join().unwrap();
    a.assert_held(&opened, &wrote);
    let out = run.finish();
    assert_eq!(code(&out), 0, "{out:?}");
    a.sb.assert_clean();
}

/// The init's case: a command (or its interpreter) that is psdock's own
/// binary would make the host's psdock the container's PID 1, dumpable, whose
/// exe a process of the container could open and, through a socket of the
/// host's network namespace, hand to a process that outlives every psdock.
/// psdock refuses to run it at all: exit 125, the binary untouched, nothing
/// left behind. Under `-init` too, where the init, PID 1, makes the check at
/// the command's exec: the command is never let run.
#[test]
fn psdock_refuses_to_run_its_own_binary_as_the_init() {
    let a = Attack::new();
    let commands = [&["/bin/sh", "-c", "echo ran"][..], &["/proc/self/exe"]];
    for (init, command) in [&[][..], &["-init"]]
        .iter()
        .flat_map(|i| commands.map(|c| (i, c)))
    {
        let out = output(&mut a.psdock(&[init, command].concat()));
        let line = assert_psdock_error(&out, &["runs psdock's own binary in the container"]);
        assert!(line.contains(command[0]), "{line}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(a.contents() == a.before, "a host binary was changed");
        a.sb.assert_clean();
    }
}

/// Under `-init`, PID 1 is psdock-init, executed from a sealed memfd: no
/// binary of the host's, nothing of psdock's memory, arguments or
/// environment. Every way to it from the container is closed (not dumpable,
/// no descriptor), with the default capabilities and with every capability but
/// CAP_SYS_PTRACE; its command line is its own.
#[test]
fn under_init_the_container_cannot_open_the_inits_binary_memory_or_descriptors() {
    const PROBE: &str = "for f in exe mem; do \
           if (exec 3</proc/1/$f) 2>/dev/null; then echo \"opened $f\"; else echo \"refused $f\"; fi; \
         done; \
         readlink /proc/1/exe >/dev/null 2>&1 && echo 'read exe link' || echo 'refused exe link'; \
         echo \"fds $(ls /proc/1/fd | wc -l)\"; \
         for m in /proc/1/map_files/*; do \
           if (exec 3<$m) 2>/dev/null || readlink $m >/dev/null 2>&1; then echo \"opened $m\"; fi; \
         done; \
         echo \"init's words: [$(cat /proc/1/cmdline /proc/1/environ 2>/dev/null | tr -d '\\0')]\"";
    let a = Attack::new();
    for caps in [&[][..], &["-cap-add", "ALL", "-cap-drop", "SYS_PTRACE"]] {
        let args = [&["-init"][..], caps, &[BB, "sh", "-c", PROBE]].concat();
        let out = output(a.psdock(&args).env("PSDOCK_TEST_SECRET", "s3cret"));
        assert_eq!(code(&out), 0, "{caps:?}: {out:?}");
        assert_eq!(
            stdout(&out),
            "refused exe\nrefused mem\nrefused exe link\nfds 0\ninit's words: [psdock-init]\n",
            "{caps:?}"
        );
        assert!(a.contents() == a.before, "a host binary was changed");
        a.sb.assert_clean();
    }
}

/// With CAP_SYS_PTRACE, the container can look into PID 1, and finds only
/// psdock-init: no descriptor (none of psdock's pipes, from the command's
/// first steps on), its exe the sealed memfd (busy and sealed: not writable),
/// nothing else is mapped, its environment is empty. psdock's binary is not
/// reachable, and no host binary changes.
#[test]
fn under_init_with_ptrace_pid_1_holds_nothing_of_psdocks() {
    const PROBE: &str = "echo \"fds $(ls /proc/1/fd | wc -l)\"; readlink /proc/1/exe; \
         if (exec 3>>/proc/1/exe) 2>/dev/null; then echo 'opened exe to write'; else echo 'refused exe to write'; fi; \
         echo \"environ [$(tr -d '\\0' </proc/1/environ)]\"; \
         awk '$6 != \"\" {print $6}' /proc/1/maps | sort -u";
    let a = Attack::new();
    let args = [&["-init", "-cap-add", "ALL"][..], &[BB, "sh", "-c", PROBE]].concat();
    let out = output(&mut a.psdock(&args));
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines();
    // From the command's first steps on: no descriptor to take from it.
    assert_eq!(lines.next(), Some("fds 0"), "{text}");
    assert_eq!(lines.next(), Some("/memfd:psdock-init (deleted)"), "{text}");
    assert_eq!(lines.next(), Some("refused exe to write"), "{text}");
    assert_eq!(lines.next(), Some("environ []"), "{text}");
    let mapped: Vec<&str> = lines.collect();
    assert!(mapped.contains(&"/memfd:psdock-init"), "{text}");
    assert!(
        mapped
            .iter()
            .all(|m| *m == "/memfd:psdock-init" || m.starts_with('[')),
        "{text}"
    );
    assert!(a.contents() == a.before, "a host binary was changed");
    a.sb.assert_clean();
}
