//! The tcp sink (and what tls shares with it) against real listeners on 127.0.0.1: psdock dials,
//! the container gets a terminal with echo off, and the peer's going away
//! hangs the command up as a terminal's hang-up would.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::*;

pub fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

pub fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads from `peer` until `needle` has been seen; returns everything read.
pub fn read_until(peer: &mut impl Read, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = peer.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "waiting for {needle:?}: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        assert!(
            n > 0,
            "peer closed before {needle:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    sb.psdock()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// psdock with `-stdio tcp://` to a listener of the test's own, and the
/// connection it made.
fn tcp_session(sb: &Sandbox, args: &[&str]) -> (Child, TcpStream) {
    let (l, port) = listen();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = spawn(sb, &[&["-stdio", url.as_str()], args].concat());
    (child, accept(&l))
}

pub const DIALOGUE: &str = "echo ready; read x; echo \"got $x\"; tty";

#[test]
fn a_tcp_peer_drives_a_terminal_with_echo_off() {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, &["sh", "-c", DIALOGUE]);
    read_until(&mut peer, "ready\r\n");
    peer.write_all(b"hello\n").unwrap();
    let mut rest = String::new();
    peer.read_to_string(&mut rest).unwrap();
    // No "hello" echoed back: the peer has its own echo.
    assert_eq!(rest, "got hello\r\n/dev/pts/0\r\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    sb.assert_clean();
}

#[test]
fn a_peer_named_by_host_name_is_resolved_without_a_second_thread() {
    // `localhost` goes through the resolver, which must not start a thread:
    // the container is cloned from a single-threaded psdock (a debug build
    // asserts it, and would exit 101 here).
    let sb = Sandbox::new();
    let (l, port) = listen();
    let url = format!("tcp://localhost:{port}");
    let child = spawn(&sb, &["-stdio", url.as_str(), "sh", "-c", "echo named"]);
    let mut peer = accept(&l);
    let mut all = String::new();
    peer.read_to_string(&mut all).unwrap();
    assert_eq!(all, "named\r\n");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    sb.assert_clean();
}

#[test]
fn a_refused_tcp_peer_is_125_before_the_container_starts() {
    let sb = Sandbox::new();
    let port = listen().1; // closed again: nothing listens there now
    let ctl = sb.path("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let url = format!("tcp://127.0.0.1:{port}");
    let out = sb.run([
        "-v",
        &format!("{}:/ctl", ctl.display()),
        "-stdio",
        &url,
        "touch",
        "/ctl/ran",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).starts_with(&format!(
            "psdock: -stdio {url}: cannot connect: Connection refused"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!ctl.join("ran").exists());
    sb.assert_clean();
}

/// psdock on a tcp peer running `args`: once the peer has read "ready" it
/// closes; psdock's exit code, its stderr empty, nothing left behind.
fn peer_closes(args: &[&str]) -> i32 {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, args);
    read_until(&mut peer, "ready");
    drop(peer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(stderr(&out), "", "{args:?}");
    sb.assert_clean();
    code(&out)
}

// The peer going away is a hang-up: an interactive shell ignores SIGTERM,
// but not SIGHUP, and as PID 1 without a handler for it, psdock ends it.
#[test]
fn an_interactive_shell_whose_peer_closes_ends_with_129() {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, &["sh"]);
    peer.write_all(b"echo re''ady\n").unwrap();
    read_until(&mut peer, "ready");
    let sent = std::time::Instant::now();
    drop(peer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 129, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // Not by the kill timeout (10 s by default).
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    sb.assert_clean();
}

#[test]
fn a_command_that_traps_the_hang_up_gets_it_and_keeps_its_exit_code() {
    let script = "trap 'echo bye; exit 3' HUP; echo ready; while :; do sleep 0.05; done";
    assert_eq!(peer_closes(&sh(script)), 3);
}

#[test]
fn the_hang_up_of_a_pid_1_without_a_handler_is_129() {
    assert_eq!(peer_closes(&sh("echo ready; exec sleep 1000")), 129);
}

// A command that ignores the hang-up is stopped by the kill timeout, as
// after SIGTERM: the run never outlives its peer for long.
#[test]
fn a_command_that_ignores_the_hang_up_is_killed_after_the_kill_timeout() {
    let script = "trap '' HUP; echo ready; exec sleep 1000";
    let sent = std::time::Instant::now();
    assert_eq!(
        peer_closes(&["-kill-timeout", "1", "sh", "-c", script]),
        137
    );
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}

// The init catches SIGHUP and carries on; the job it runs in the foreground
// of the container's terminal (job control: a process group of its own) gets
// it too, as on a terminal that hangs up. (Caught, not ignored: a shell
// cannot trap what it was started ignoring.)
#[test]
fn the_hang_up_reaches_the_foreground_job() {
    let script = "trap : HUP; set -m; \
                  sh -c 'trap \"exit 9\" HUP; echo ready; while :; do sleep 0.05; done'; \
                  exit $(($? + 40))";
    assert_eq!(peer_closes(&sh(script)), 49);
}

#[test]
fn ctrl_c_from_the_peer_ends_a_command_that_is_pid_1_with_130() {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, &["sh", "-c", "echo ready; exec sleep 1000"]);
    read_until(&mut peer, "ready\r\n");
    peer.write_all(b"\x03").unwrap();
    // The peer stays connected: its Ctrl-C, not its going away, ends the run.
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut rest = String::new();
    peer.read_to_string(&mut rest)
        .expect("psdock to end the session");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    sb.assert_clean();
}

/// psdock's anonymous resident memory: what buffering would grow. (Its total
/// RSS, under 8 MiB, is measured on the release build by
/// bench/log-throughput.sh: a debug binary maps ~8 MiB of its own code.)
fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    field(&status, "RssAnon")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until the container's init, `yes`, has slept for a while: it never
/// sleeps unless a write blocks.
pub fn blocked_on_writes(psdock: u32) {
    let children = format!("/proc/{psdock}/task/{psdock}/children");
    let init: u32 = wait_for("the container's init", || {
        std::fs::read_to_string(&children).ok()?.trim().parse().ok()
    });
    let mut asleep = 0;
    wait_for("the command to block on its writes", || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
        let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
        asleep = if state == 'S' { asleep + 1 } else { 0 };
        (asleep >= 40).then_some(())
    });
}

/// The figure in psdock's "N bytes not delivered" line.
pub fn undelivered(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.ends_with(" bytes not delivered"))
        .unwrap_or_else(|| panic!("no undelivered count in {stderr:?}"));
    line.rsplit(": ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn one_sigterm_ends_a_run_whose_peer_does_not_read_after_a_bounded_drain() {
    let sb = Sandbox::new();
    let (l, port) = listen();
    let url = format!("tcp://127.0.0.1:{port}");
    let run = Running::start(sb.psdock().args(["-stdio", &url, "yes", "goes nowhere"]));
    let mut peer = accept(&l);
    read_until(&mut peer, "nowhere");
    blocked_on_writes(run.pid() as u32);
    // And held by the peer, not by a busy machine: what the peer has not
    // read stops growing, so psdock's side is full too.
    let mut last = (0, 0);
    wait_for("the peer's receive queue to fill", || {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD fills an int.
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&peer),
                libc::FIONREAD,
                &mut queued,
            )
        };
        last = if queued > 0 && queued == last.0 {
            (queued, last.1 + 1)
        } else {
            (queued, 0)
        };
        std::thread::sleep(Duration::from_millis(5));
        (last.1 >= 100).then_some(())
    });
    run.signal(nix::sys::signal::Signal::SIGTERM);
    // The peer stays connected and never reads again: psdock must not wait
    // for it (`finish` fails the test after its deadline).
    let out = run.finish();
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    let lost = undelivered(&stderr(&out));
    assert!(lost > 0, "{}", stderr(&out));
    drop(peer);
    sb.assert_clean();
}

#[test]
fn a_peer_that_stops_reading_holds_the_command_and_psdock_stays_small() {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, &["yes", "a line of output that goes nowhere"]);
    read_until(&mut peer, "nowhere");
    blocked_on_writes(child.id());
    let rss = rss_anon_kib(child.id());
    assert!(rss < 4 * 1024, "psdock's anonymous RSS is {rss} KiB");
    // Reading again lets it go on.
    let mut buf = vec![0u8; 1 << 20];
    peer.read_exact(&mut buf).unwrap();
    drop(peer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 129, "{}", stderr(&out));
    sb.assert_clean();
}
