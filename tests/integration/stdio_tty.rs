//! The inherit sink on a real terminal: a pty allocated here stands for the
//! user's terminal, and is psdock's controlling terminal as a shell's would be.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

use crate::util::*;

pub struct Terminal {
    master: File,
    slave: Option<OwnedFd>,
    pub screen: Collected,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    pub fn new(rows: u16, cols: u16) -> Self {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let master = File::from(pty.master);
        let (screen, reader) = Collected::from(master.try_clone().unwrap());
        Self {
            master,
            slave: Some(pty.slave),
            screen,
            reader: Some(reader),
        }
    }

    fn slave(&self) -> Stdio {
        Stdio::from(self.slave.as_ref().unwrap().try_clone().unwrap())
    }

    /// `stty -g` of the terminal, as a shell on it would see it.
    pub fn settings(&self) -> String {
        let out = std::process::Command::new("stty")
            .arg("-g")
            .stdin(self.slave())
            .output()
            .unwrap();
        assert!(out.status.success());
        stdout(&out)
    }

    fn flags(&self) -> String {
        let out = std::process::Command::new("stty")
            .arg("-a")
            .stdin(self.slave())
            .output()
            .unwrap();
        stdout(&out)
    }

    /// Runs psdock on this terminal as the foreground job of its session.
    fn spawn(&self, sb: &Sandbox, args: &[&str]) -> Child {
        let mut cmd = sb.psdock();
        cmd.args(args);
        self.run(cmd)
    }

    /// Runs `cmd` on this terminal as the foreground job of its session.
    pub fn run(&self, mut cmd: std::process::Command) -> Child {
        cmd.stdin(self.slave())
            .stdout(self.slave())
            .stderr(self.slave());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize.
        assert_eq!(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            0
        );
    }

    pub fn type_bytes(&self, bytes: &[u8]) {
        use std::io::Write;
        (&self.master).write_all(bytes).unwrap();
    }

    /// Everything shown, once psdock is gone and the terminal closed.
    pub fn close(mut self) -> String {
        self.slave = None;
        self.reader.take().unwrap().join().unwrap();
        self.screen.text()
    }
}

pub fn wait_code(child: &mut Child) -> i32 {
    let status = child.wait().unwrap();
    status
        .code()
        .unwrap_or_else(|| panic!("psdock died by a signal: {status:?}"))
}

#[test]
fn a_terminal_gets_its_own_pty_sized_like_the_hosts_with_ctrl_c_as_a_character() {
    let sb = Sandbox::new();
    let term = Terminal::new(33, 111);
    let before = term.settings();
    let mut psdock = term.spawn(
        &sb,
        &[
            "sh",
            "-c",
            "tty; stty size </dev/tty; trap 'stty size' WINCH; trap 'echo got-int; exit 4' INT; \
             echo ready; while :; do sleep 0.05; done",
        ],
    );
    term.screen.wait_for("ready");
    let during = term.flags();
    assert!(
        during.contains("-icanon") && during.contains("-echo ") && during.contains("-isig"),
        "{during}"
    );
    term.resize(44, 99);
    term.screen.wait_for("44 99");
    // With the host terminal raw, Ctrl-C is a byte: psdock is not interrupted,
    // the container's terminal turns it into SIGINT for the command.
    term.type_bytes(b"\x03");
    assert_eq!(wait_code(&mut psdock), 4);
    assert_eq!(term.settings(), before, "stty -g changed");
    let screen = term.close();
    assert!(screen.starts_with("/dev/pts/0\r\n33 111\r\n"), "{screen:?}");
    assert!(screen.contains("got-int"), "{screen:?}");
    sb.assert_clean();
}

#[test]
fn the_terminal_is_restored_when_psdock_is_signalled() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let before = term.settings();
    let mut psdock = term.spawn(&sb, &["sh", "-c", "echo ready; exec sleep 1000"]);
    term.screen.wait_for("ready");
    assert_ne!(
        term.settings(),
        before,
        "the terminal was not put in raw mode"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(psdock.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(wait_code(&mut psdock), 143);
    assert_eq!(term.settings(), before, "stty -g changed");
    term.close();
    sb.assert_clean();
}

#[test]
fn the_terminal_is_unchanged_when_the_command_cannot_start() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let before = term.settings();
    let mut psdock = term.spawn(&sb, &["no-such-command"]);
    assert_eq!(wait_code(&mut psdock), 127);
    assert_eq!(term.settings(), before, "stty -g changed");
    let screen = term.close();
    assert!(
        screen.contains("psdock: no-such-command: command not found"),
        "{screen:?}"
    );
    sb.assert_clean();
}

#[test]
fn typed_input_reaches_the_command_and_its_output_is_prefixed() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let mut psdock = term.spawn(
        &sb,
        &[
            "-stdout-prefix",
            "[c] ",
            "sh",
            "-c",
            "echo ready; read x; echo \"got $x\"",
        ],
    );
    term.screen.wait_for("ready");
    term.type_bytes(b"hello\r");
    assert_eq!(wait_code(&mut psdock), 0);
    let screen = term.close();
    // The container's terminal echoes what is typed, since the host's is raw.
    assert_eq!(screen, "[c] ready\r\n[c] hello\r\n[c] got hello\r\n");
    sb.assert_clean();
}

/// psdock's exit code, failing the test if it does not end within [`DEADLINE`].
fn ends_within_deadline(child: &mut Child) -> i32 {
    let status = wait_for("psdock to exit", || child.try_wait().unwrap());
    status
        .code()
        .unwrap_or_else(|| panic!("psdock died by a signal: {status:?}"))
}

/// Runs `script` on a terminal, types `key` once it printed "ready", and
/// returns psdock's exit code and the screen.
fn key_ends(script: &str, key: &[u8]) -> (i32, String) {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let before = term.settings();
    let mut psdock = term.spawn(&sb, &sh(script));
    term.screen.wait_for("ready");
    term.type_bytes(key);
    let code = ends_within_deadline(&mut psdock);
    assert_eq!(term.settings(), before, "stty -g changed");
    let screen = term.close();
    sb.assert_clean();
    (code, screen)
}

// The command is the container's PID 1 and handles no signal: the kernel
// drops the SIGINT its terminal sends, so psdock applies the PID-1 rule.
#[test]
fn ctrl_c_ends_a_sleep_that_is_pid_1_with_130() {
    assert_eq!(key_ends("echo ready; exec sleep 100", b"\x03").0, 130);
}

#[test]
fn ctrl_c_ends_a_cat_reading_the_terminal_with_130() {
    // Typed on the same line as what cat is waiting for.
    assert_eq!(key_ends("echo ready; exec cat", b"abc\x03").0, 130);
}

#[test]
fn ctrl_backslash_ends_a_sleep_that_is_pid_1_with_131() {
    assert_eq!(key_ends("echo ready; exec sleep 100", b"\x1c").0, 131);
}

#[test]
fn a_remapped_interrupt_key_is_the_one_that_counts() {
    // `stty intr ^X`: Ctrl-X interrupts, Ctrl-C is an ordinary byte.
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let mut psdock = term.spawn(
        &sb,
        &sh("stty intr ^X; echo ready; read x; echo \"read [$x]\"; exec sleep 100"),
    );
    term.screen.wait_for("ready");
    term.type_bytes(b"\x03\r");
    term.screen.wait_for("read [\u{3}]");
    term.type_bytes(b"\x18");
    assert_eq!(ends_within_deadline(&mut psdock), 130);
    term.close();
    sb.assert_clean();
}

#[test]
fn a_shell_that_traps_ctrl_c_gets_it_and_carries_on() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let mut psdock = term.spawn(
        &sb,
        &sh("trap 'echo got-int' INT; echo ready; \
             while ! read x; do :; done; echo \"got $x\"; exit 3"),
    );
    term.screen.wait_for("ready");
    term.type_bytes(b"\x03");
    term.screen.wait_for("got-int");
    term.type_bytes(b"more\r");
    assert_eq!(ends_within_deadline(&mut psdock), 3);
    let screen = term.close();
    assert!(screen.contains("got more"), "{screen:?}");
    sb.assert_clean();
}
