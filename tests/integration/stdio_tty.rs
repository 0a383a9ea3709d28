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
    pub fn run(&self, cmd: std::process::Command) -> Child {
        on_terminal(cmd, self.slave.as_ref().unwrap())
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

/// Runs `cmd` on the terminal whose slave is `slave`, as the leader of a
/// session of its own and so in its foreground.
fn on_terminal(mut cmd: std::process::Command, slave: &OwnedFd) -> Child {
    cmd.stdin(dup(slave)).stdout(dup(slave)).stderr(dup(slave));
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

fn dup(fd: &OwnedFd) -> Stdio {
    Stdio::from(fd.try_clone().unwrap())
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

/// A pty whose two sides are close-on-exec from the start: the processes
/// other tests start meanwhile must not keep the master open, or closing it
/// would hang nothing up.
fn private_pty() -> (File, OwnedFd) {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::pty::posix_openpt(flags).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    // SAFETY: TIOCGPTPEER returns a new descriptor for the slave.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    assert!(slave >= 0, "{}", std::io::Error::last_os_error());
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: both just opened, owned by nothing else.
    unsafe {
        (
            File::from_raw_fd(master.into_raw_fd()),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

/// Reads `master` in a thread until `needle` has been shown; that thread's
/// descriptor of the master is closed before this returns.
fn shown(master: &File, needle: &'static str) -> String {
    use std::io::Read;
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains(needle) {
            match reader.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        drop(reader);
        let _ = tx.send(String::from_utf8_lossy(&got).into_owned());
    });
    let got = rx.recv_timeout(DEADLINE).expect("the terminal to show it");
    assert!(got.contains(needle), "{needle:?} not shown: {got:?}");
    got
}

// psdock's own terminal hangs up (an ssh session dropped: the master side
// closes). An interactive shell, which ignores SIGTERM, is hung up in turn:
// as PID 1 it does not handle SIGHUP, so psdock ends it with 129.
#[test]
fn an_interactive_shell_ends_with_129_when_psdocks_terminal_hangs_up() {
    use std::io::Write;
    let sb = Sandbox::new();
    let (master, slave) = private_pty();
    let mut cmd = sb.psdock();
    cmd.arg("sh");
    let mut psdock = on_terminal(cmd, &slave);
    drop(slave);
    (&master).write_all(b"echo re''ady\r").unwrap();
    shown(&master, "ready\r\n");
    let hung_up = std::time::Instant::now();
    drop(master);
    assert_eq!(ends_within_deadline(&mut psdock), 129);
    // The hang-up, not the kill timeout (10 s), ended it.
    assert!(hung_up.elapsed() < std::time::Duration::from_secs(5));
    sb.assert_clean();
}

// A SIGHUP sent with kill to psdock on a terminal is an ordinary signal,
// forwarded: no hang-up (which would send SIGCONT too, and start the stop).
#[test]
fn a_sighup_sent_to_psdock_on_a_terminal_is_forwarded_not_a_hang_up() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let mut psdock = term.spawn(
        &sb,
        &[
            "-kill-timeout",
            "1",
            "sh",
            "-c",
            "trap 'echo got-hup' HUP; trap 'echo got-cont' CONT; echo ready; \
             while ! read x; do :; done; echo \"got $x\"; exit 6",
        ],
    );
    term.screen.wait_for("ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(psdock.id() as i32),
        nix::sys::signal::SIGHUP,
    )
    .unwrap();
    term.screen.wait_for("got-hup");
    term.type_bytes(b"more\r");
    assert_eq!(ends_within_deadline(&mut psdock), 6);
    let screen = term.close();
    assert!(screen.contains("got more"), "{screen:?}");
    assert!(!screen.contains("got-cont"), "{screen:?}");
    sb.assert_clean();
}

/// Runs psdock on this terminal as a background job: in a session whose
/// leader, a process standing for the user's shell, keeps the terminal's
/// foreground, psdock is in a process group of its own. On SIGUSR1 the
/// leader brings psdock to the foreground as a shell's `fg` does
/// (tcsetpgrp, then SIGCONT to the group); on SIGUSR2 it takes the
/// foreground back with the settings it started with, as a shell does when
/// a job stops. The child returned is the leader, which exits with psdock's
/// exit code.
fn spawn_in_background(term: &Terminal, sb: &Sandbox, args: &[&str]) -> Child {
    let mut cmd = sb.psdock();
    cmd.args(args)
        .stdin(term.slave())
        .stdout(term.slave())
        .stderr(term.slave());
    // SAFETY: only system calls between fork and exec, and in the leader,
    // which never returns from here.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut settings: libc::termios = std::mem::zeroed();
            libc::tcgetattr(0, &mut settings);
            let mut wanted: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut wanted);
            for sig in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD] {
                libc::sigaddset(&mut wanted, sig);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &wanted, &mut before);
            let job = libc::fork();
            if job < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if job == 0 {
                libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                libc::setpgid(0, 0);
                return Ok(());
            }
            libc::setpgid(job, job);
            // From the background, the terminal's owner is changed by its
            // shell without stopping it.
            libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            // The descriptor that tells spawn() the exec happened is closed
            // with the others: psdock's own exec closes its copy.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            loop {
                match libc::sigwaitinfo(&wanted, std::ptr::null_mut()) {
                    libc::SIGUSR1 => {
                        libc::tcsetpgrp(0, job);
                        libc::kill(-job, libc::SIGCONT);
                    }
                    libc::SIGUSR2 => {
                        libc::tcsetpgrp(0, libc::getpgrp());
                        libc::tcsetattr(0, libc::TCSADRAIN, &settings);
                    }
                    libc::SIGCHLD => {
                        let mut status = 0;
                        if libc::waitpid(job, &mut status, libc::WNOHANG) == job {
                            libc::_exit(if libc::WIFEXITED(status) {
                                libc::WEXITSTATUS(status)
                            } else {
                                128 + libc::WTERMSIG(status)
                            });
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    cmd.spawn().unwrap()
}

/// A background psdock reading a line, started as [`spawn_in_background`]
/// does, once it has shown "ready": its leader, and the terminal's settings
/// from before.
fn reader_in_background(sb: &Sandbox, term: &Terminal) -> (Child, String) {
    let before = term.settings();
    let script = "echo ready; while ! read x; do :; done; echo \"got $x\"; exit 4";
    let leader = spawn_in_background(term, sb, &sh(script));
    term.screen.wait_for("ready");
    (leader, before)
}

/// Brings the background psdock of `leader` to the foreground and waits
/// until it has made its terminal raw.
fn bring_to_foreground(leader: &Child, term: &Terminal, before: &str) {
    tell(leader, nix::sys::signal::SIGUSR1);
    wait_for("psdock to make its terminal raw", || {
        (term.settings() != before).then_some(())
    });
}

/// Sends `sig` to the leader of [`spawn_in_background`].
fn tell(leader: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(leader.id() as i32), sig).unwrap();
}

/// The reader's end: it read `typed` and exited 4, the settings are back.
fn reads_and_ends(mut leader: Child, term: Terminal, before: &str, sb: &Sandbox, typed: &str) {
    assert_eq!(ends_within_deadline(&mut leader), 4);
    assert_eq!(term.settings(), before, "stty -g changed");
    let screen = term.close();
    assert!(screen.contains(&format!("got {typed}")), "{screen:?}");
    sb.assert_clean();
}

// `psdock ... &` in an interactive shell: psdock leaves the terminal's mode
// to the shell and reads nothing (EIO there is "not now", not the end of
// input), keeps running, and once brought to the foreground makes the
// terminal raw, reads what is typed, and gives the settings back at the end.
#[test]
fn a_background_psdock_leaves_the_terminal_alone_until_brought_to_the_foreground() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let (mut leader, before) = reader_in_background(&sb, &term);
    assert_eq!(term.settings(), before, "a background psdock set the mode");
    assert!(leader.try_wait().unwrap().is_none(), "psdock ended");
    bring_to_foreground(&leader, &term, &before);
    term.type_bytes(b"hello\r");
    reads_and_ends(leader, term, &before, &sb, "hello");
}

// Sent back to the background while it reads (the shell takes its terminal
// back): what is typed then is the shell's; the EIO psdock's read gets is
// "not now", not the end of input. In the foreground again, psdock reads on.
#[test]
fn a_psdock_sent_to_the_background_carries_on_when_brought_back() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    let (mut leader, before) = reader_in_background(&sb, &term);
    bring_to_foreground(&leader, &term, &before);
    tell(&leader, nix::sys::signal::SIGUSR2);
    wait_for("the shell to take its terminal back", || {
        (term.settings() == before).then_some(())
    });
    // A whole line, which psdock's poll sees and its read is refused.
    term.type_bytes(b"typed-meanwhile\r");
    term.screen.wait_for("typed-meanwhile\r\n");
    assert!(leader.try_wait().unwrap().is_none(), "psdock ended");
    tell(&leader, nix::sys::signal::SIGUSR1);
    reads_and_ends(leader, term, &before, &sb, "typed-meanwhile");
}

// With a prefix, psdock writes the command's output to its terminal itself;
// when that terminal hangs up, the write fails (EIO): the message, on an
// stderr that is not the terminal, names psdock's stdout, not a -stdio that
// was never given, and the command is hung up in turn (129).
#[test]
fn a_terminal_that_hangs_up_under_the_output_is_named_as_psdocks_stdout() {
    use std::io::Read;
    let sb = Sandbox::new();
    let (master, slave) = private_pty();
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut psdock = sb
        .psdock()
        .args(["-stdout-prefix", "p ", "sh", "-c"])
        .arg("echo ready; while :; do echo more; sleep 0.01; done")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::from(err_w))
        .spawn()
        .unwrap();
    shown(&master, "p ready\r\n");
    drop(master);
    assert_eq!(ends_within_deadline(&mut psdock), 129);
    let mut said = String::new();
    File::from(err_r).read_to_string(&mut said).unwrap();
    assert_eq!(said, "psdock: psdock's stdout: Input/output error\n");
    sb.assert_clean();
}
