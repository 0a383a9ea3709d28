//! -bind-port: `running` waits until the command or a descendant listens on the
//! port, with every probe: a grandchild's listener, IPv4 and IPv6 (`::`), and
//! neither an outgoing connection to the port nor someone else's listener.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::hook::{Hook, Request};
use crate::util::*;

const PROBES: [&str; 3] = ["netlink", "procfs", "lsof"];

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(sb: &Sandbox, hook: &Hook, probe: &str, port: u16, script: &str) -> Child {
    sb.psdock()
        .args(["-web-hook", &hook.url(), "-bind-port", &port.to_string()])
        .args(["-port-probe", probe, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Opens and closes a connection, which ends `nc -l`.
fn knock(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nobody listens on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn statuses(requests: &[Request]) -> Vec<String> {
    requests.iter().map(Request::status).collect()
}

/// Nothing but `starting` arrives for 1.2 s: more than two looks of the
/// slowest probe (lsof, every 500 ms).
fn stays_starting(hook: &Hook, probe: &str) {
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        assert_eq!(statuses(&hook.requests()), ["starting"], "{probe}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("psdock"), "{}", stderr(&out));
    out
}

/// The command first waits for the test's go-ahead on stdin, then `script`
/// listens: `running` must not arrive before the go-ahead, and must after.
fn running_waits_for(probe: &str, listen: &str) {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let port = free_port();
    let script = format!("read _; {}", listen.replace("PORT", &port.to_string()));
    let mut child = start(&sb, &hook, probe, port, &script);
    hook.wait_for_status("starting");
    // `running` would be next if it did not wait for the port.
    stays_starting(&hook, probe);
    let go = Instant::now();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let running = hook.wait_for_status("running");
    assert!(running.at > go, "{probe}");
    knock(port);
    let out = finish(child);
    assert_eq!(code(&out), 0, "{probe}: {}", stderr(&out));
    assert_eq!(
        statuses(&hook.requests()),
        ["starting", "running", "crashed"],
        "{probe}"
    );
    sb.assert_clean();
}

#[test]
fn running_waits_for_a_listener_on_ipv6_any() {
    // busybox nc -l binds `::`, dual-stack.
    for probe in PROBES {
        running_waits_for(probe, "nc -l -p PORT");
    }
}

#[test]
fn running_waits_for_a_grandchild_listening_on_ipv4() {
    // The init's child is a subshell; its child, httpd, listens on 127.0.0.1.
    for probe in PROBES {
        let sb = Sandbox::new();
        let hook = Hook::ok();
        let port = free_port();
        let script = format!("(httpd -f -p 127.0.0.1:{port}; true) & wait");
        let child = start(&sb, &hook, probe, port, &script);
        hook.wait_for_status("running");
        // Only now does anybody listen: the probe saw the grandchild's socket.
        TcpStream::connect(("127.0.0.1", port)).expect("the grandchild listens");
        // SIGTERM to psdock: the shell does not catch it, so it is SIGKILLed.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = finish(child);
        assert_eq!(code(&out), 143, "{probe}");
        let got = hook.wait_for(3);
        assert_eq!(
            statuses(&got),
            ["starting", "running", "crashed"],
            "{probe}"
        );
        assert_eq!(got[2].ps()["signal"], "SIGKILL", "{probe}");
        sb.assert_clean();
    }
}

#[test]
fn running_waits_for_a_grandchild_listening_on_ipv6_any() {
    for probe in PROBES {
        running_waits_for(probe, "(nc -l -p PORT; true) & wait");
    }
}

#[test]
fn an_outgoing_connection_to_the_port_and_another_listener_do_not_count() {
    for probe in PROBES {
        let sb = Sandbox::new();
        let hook = Hook::ok();
        // The test listens on the port itself: not the container's socket.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!("nc 127.0.0.1 {port}; exit 5");
        let child = start(&sb, &hook, probe, port, &script);
        // The container's connection: local port random, remote port the one.
        let (conn, _) = listener.accept().unwrap();
        hook.wait_for_status("starting");
        stays_starting(&hook, probe);
        drop(conn); // nc sees the end of the stream and exits
        let out = finish(child);
        assert_eq!(code(&out), 5, "{probe}");
        let got = hook.requests();
        assert_eq!(statuses(&got), ["starting", "crashed"], "{probe}");
        assert_eq!(got[1].seq(), 2, "{probe}");
        sb.assert_clean();
    }
}

#[test]
fn bad_port_flags_are_exit_125_naming_flag_and_value_and_leave_nothing() {
    let sb = Sandbox::new();
    for bad in ["0", "65536", "http"] {
        let out = sb.run(["-bind-port", bad, "true"]);
        assert_eq!(code(&out), 125, "{bad}");
        assert_eq!(
            stderr(&out),
            format!("psdock: -bind-port '{bad}': must be a port number from 1 to 65535\n")
        );
        sb.assert_clean();
    }
    let hook = "http://127.0.0.1:1/";
    let out = sb.run([
        "-web-hook",
        hook,
        "-bind-port",
        "80",
        "-port-probe",
        "telepathy",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock: -port-probe: unknown ports implementation `telepathy` (this build has: netlink, procfs, lsof)\n"
    );
    let out = sb.run(["-web-hook", hook, "-port-probe", "netlink", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "psdock: -port-probe needs -bind-port\n");
    let out = sb.run(["-bind-port", "80", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock: -bind-port needs -web-hook, or NOTIFY_SOCKET (a systemd Type=notify service)\n"
    );
    sb.assert_clean();
}

#[test]
fn a_command_that_exits_at_once_is_no_probe_error_and_crashes_with_its_code() {
    // The first look races the command's end: whether it meets a zombie (its
    // namespaces and /proc/<pid>/net already gone) varies, so each probe is
    // asked many times; without the fix netlink failed about every other run,
    // procfs every run; lsof's look, still under way, outlived psdock.
    for probe in PROBES {
        for _ in 0..20 {
            let sb = Sandbox::new();
            let hook = Hook::ok();
            let port = free_port().to_string();
            let out = sb.run([
                "-web-hook",
                &hook.url(),
                "-bind-port",
                &port,
                "-port-probe",
                probe,
                "sh",
                "-c",
                "exit 7",
            ]);
            assert_eq!((code(&out), stderr(&out)), (7, String::new()), "{probe}");
            let got = hook.requests();
            assert_eq!(statuses(&got), ["starting", "crashed"], "{probe}");
            assert_eq!(got[1].ps()["exit_code"], 7, "{probe}");
            sb.assert_clean();
        }
    }
}
