//! Under systemd: the notifications on a real NOTIFY_SOCKET listener (MAINPID,
//! READY=1 once -bind-port is listened on, STATUS lines, STOPPING=1 at SIGTERM
//! and at the command's end, the watchdog's pings), each checked to come from
//! psdock's own pid; the variables kept out of the container; and the unit
//! template as `systemd-analyze verify` reads it.

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials};

use crate::ports::free_port;
use crate::util::*;

/// systemd's end of NOTIFY_SOCKET: a unix datagram socket that asks the
/// kernel for each sender's credentials (SO_PASSCRED), as systemd's does.
struct Notifications {
    sock: UnixDatagram,
    /// What NOTIFY_SOCKET is set to.
    address: String,
}

impl Notifications {
    fn at_path(sb: &Sandbox) -> Self {
        let path = sb.path("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        Self::with(sock, path.to_str().unwrap().to_owned())
    }

    fn abstract_name(sb: &Sandbox) -> Self {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("psdock-test{}", sb.path("notify").display());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        Self::with(sock, format!("@{name}"))
    }

    fn with(sock: UnixDatagram, address: String) -> Self {
        socket::setsockopt(&sock, sockopt::PassCred, &true).unwrap();
        Self { sock, address }
    }

    /// The next message and the pid the kernel says sent it; fails the test
    /// after [`DEADLINE`].
    fn next(&self) -> (i32, String) {
        self.within(DEADLINE)
            .unwrap_or_else(|| panic!("no notification within {DEADLINE:?}"))
    }

    /// The next message, if one arrives within `wait`.
    fn within(&self, wait: Duration) -> Option<(i32, String)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(UnixCredentials);
        let msg = match socket::recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN) => return None,
            Err(e) => panic!("recvmsg: {e}"),
        };
        let pid = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                _ => None,
            })
            .expect("the kernel's credentials");
        let len = msg.bytes;
        Some((pid, String::from_utf8_lossy(&buf[..len]).into_owned()))
    }

    /// The next message, which must come from `pid`.
    fn from(&self, pid: i32) -> String {
        let (sender, text) = self.next();
        assert_eq!(sender, pid, "{text:?} came from another process");
        text
    }
}

#[test]
fn mainpid_then_ready_once_the_port_is_listened_on_then_stopping_at_sigterm() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let port = free_port();
    // Listens only on the test's go-ahead; reports SIGTERM and waits for
    // the test before it exits.
    let script = format!(
        "trap 'echo got TERM; read _; exit 7' TERM; echo waiting; read _; \
         (nc -l -p {port}; true) & while :; do wait; done"
    );
    let mut run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .args(["-bind-port", &port.to_string(), "-port-probe", "netlink"])
            .args(sh(&script)),
    );
    let pid = run.pid();
    assert_eq!(sd.from(pid), format!("MAINPID={pid}\nSTATUS=starting"));
    assert_eq!(run.line(), "waiting");
    // READY=1 would be next had it not waited for the port: nothing for
    // 300 ms, some 25 looks of the netlink probe.
    assert_eq!(sd.within(Duration::from_millis(300)), None);
    run.send_line("go");
    assert_eq!(sd.from(pid), "READY=1\nSTATUS=running");
    TcpStream::connect(("127.0.0.1", port)).expect("READY=1 came once the port was listened on");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "got TERM");
    // At SIGTERM, while the command still runs (it waits for the test).
    assert_eq!(sd.from(pid), "STOPPING=1\nSTATUS=stopping");
    run.send_line("exit");
    let out = sb.ends(run, 7);
    assert_eq!(stderr(&out), "");
    // Once: the command's end says nothing more.
    assert_eq!(sd.within(Duration::from_millis(100)), None);
}

#[test]
fn without_bind_port_ready_comes_at_once_and_stopping_when_the_command_ends() {
    let sb = Sandbox::new();
    let sd = Notifications::abstract_name(&sb);
    let mut run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .args(sh("echo started; read _; exit 3")),
    );
    let pid = run.pid();
    assert_eq!(sd.from(pid), format!("MAINPID={pid}\nSTATUS=starting"));
    assert_eq!(sd.from(pid), "READY=1\nSTATUS=running");
    assert_eq!(run.line(), "started");
    run.send_line("end");
    assert_eq!(sd.from(pid), "STOPPING=1\nSTATUS=stopping");
    let out = sb.ends(run, 3);
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_command_that_cannot_start_is_stopping_without_ready() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let out = output(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .arg("no-such-command"),
    );
    assert_eq!(code(&out), 127);
    let (_, first) = sd.next();
    assert!(first.starts_with("MAINPID="), "{first}");
    assert_eq!(sd.next().1, "STOPPING=1\nSTATUS=stopping");
    sb.assert_clean();
}

#[test]
fn the_watchdog_is_fed_every_half_watchdog_usec_and_only_psdocks_own() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let mut run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .env("WATCHDOG_USEC", "200000")
            .args(sh("echo started; read _")),
    );
    let pid = run.pid();
    assert!(sd.from(pid).starts_with("MAINPID="));
    let mut pings = Vec::new();
    while pings.len() < 4 {
        let text = sd.from(pid);
        if text == "WATCHDOG=1" {
            pings.push(Instant::now());
        } else {
            assert_eq!(text, "READY=1\nSTATUS=running");
        }
    }
    // Every 100 ms: neither a flood nor too far apart for a 200 ms watchdog.
    for w in pings[1..].windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(50) && gap < Duration::from_millis(190),
            "{gap:?}"
        );
    }
    assert_eq!(run.line(), "started");
    run.send_line("end");
    sb.ends(run, 0);

    // WATCHDOG_PID names another process: the watchdog is not psdock's.
    let sd = Notifications::abstract_name(&sb);
    let mut run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .env("WATCHDOG_USEC", "100000")
            .env("WATCHDOG_PID", "1")
            .args(sh("echo started; read _")),
    );
    assert_eq!(run.line(), "started");
    let mut got = Vec::new();
    while let Some((_, text)) = sd.within(Duration::from_millis(300)) {
        got.push(text);
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got.contains(&"WATCHDOG=1".to_owned()), "{got:?}");
    run.send_line("end");
    sb.ends(run, 0);
}

#[test]
fn notify_socket_and_the_watchdog_stay_out_of_the_container_unless_asked_for() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let env_of = |extra: &[&str]| {
        let out = output(
            sb.psdock()
                .env("NOTIFY_SOCKET", &sd.address)
                .env("WATCHDOG_USEC", "30000000")
                .env("WATCHDOG_PID", "1")
                .args(extra)
                .arg("env"),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let env = env_of(&[]);
    for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(!env.contains(name), "{name} in {env}");
    }
    let env = env_of(&["-e", "NOTIFY_SOCKET"]);
    assert!(
        env.lines()
            .any(|l| l == format!("NOTIFY_SOCKET={}", sd.address)),
        "{env}"
    );
    assert!(!env.contains("WATCHDOG_"), "{env}");
    sb.assert_clean();
}

#[test]
fn a_malformed_notify_socket_or_watchdog_usec_is_exit_125_and_leaves_nothing() {
    let sb = Sandbox::new();
    for (vars, message) in [
        (
            [("NOTIFY_SOCKET", "notify.sock"), ("WATCHDOG_USEC", "")],
            "psdock: NOTIFY_SOCKET \"notify.sock\": not an absolute path or an @abstract socket name",
        ),
        (
            [("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "5s")],
            "psdock: WATCHDOG_USEC \"5s\": not a whole number of microseconds above 0",
        ),
    ] {
        let mut cmd = sb.psdock();
        for (k, v) in vars.into_iter().filter(|(_, v)| !v.is_empty()) {
            cmd.env(k, v);
        }
        let out = output(cmd.arg("true"));
        assert_eq!(code(&out), 125, "{vars:?}");
        assert_eq!(stderr(&out), format!("{message}\n"));
        sb.assert_clean();
    }
}

#[test]
fn a_notify_socket_nobody_listens_on_is_one_warning_and_the_run_goes_on() {
    let sb = Sandbox::new();
    let gone = sb.path("gone");
    let out = output(sb.psdock().env("NOTIFY_SOCKET", &gone).args(sh("exit 4")));
    assert_eq!(code(&out), 4);
    assert_eq!(
        stderr(&out),
        format!("psdock: NOTIFY_SOCKET {gone:?}: cannot send to it: ENOENT: No such file or directory\n")
    );
    sb.assert_clean();
}

/// The unit template and the example configuration, in `contrib/`.
fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_template() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    let Ok(version) = analyze else {
        // Not on this host at all: nothing can read the unit here.
        eprintln!("skipped: systemd-analyze cannot run on this host");
        return;
    };
    assert!(version.status.success(), "{version:?}");
    let sb = Sandbox::new();
    // systemd-analyze checks that ExecStart's program exists: the built
    // psdock stands in for /usr/bin/psdock.
    let unit = std::fs::read_to_string(contrib("psdock@.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/psdock $PSDOCK_ARGS"),
        "{unit}"
    );
    let dir = sb.path("units");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("psdock@.service"),
        unit.replace("/usr/bin/psdock", psdock().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("psdock@nginx.service"))
        .output()
        .unwrap();
    // A key systemd does not know, or a value it cannot parse, is only a
    // warning on stderr: none may be there.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Room for psdock's own stop: -kill-timeout and -web-hook-timeout (10 s
    // each by default), then the teardown.
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec= in seconds");
    assert!(stop > 10 + 10, "TimeoutStopSec={stop}");
}

#[test]
fn the_example_configuration_is_psdock_flags_the_service_accepts() {
    let conf = std::fs::read_to_string(contrib("nginx.conf")).unwrap();
    let args = conf
        .lines()
        .find_map(|l| l.strip_prefix("PSDOCK_ARGS="))
        .expect("PSDOCK_ARGS=");
    // As systemd splits $PSDOCK_ARGS, under the service's NOTIFY_SOCKET
    // (which lets -bind-port go without -web-hook): every flag is read, and
    // the first thing missing is the image, not fetched here (its path is
    // the sandbox's, whatever this host has).
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let image = sb.path("images/nginx");
    let words = args.split_whitespace().map(|w| match w {
        "/var/lib/psdock/images/nginx" => image.to_str().unwrap(),
        w => w,
    });
    let out = output(sb.bare().env("NOTIFY_SOCKET", &sd.address).args(words));
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "psdock: -image {}: No such file or directory (os error 2)\n",
            image.display()
        )
    );
    sb.assert_clean();
}

#[test]
fn across_attempts_stopping_comes_only_at_the_end_and_the_wait_is_a_status() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let mut run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .args(["-restart", "on-failure:1", "-restart-delay", "1500ms"])
            .args(sh("echo started; read _; exit 3")),
    );
    let pid = run.pid();
    for last in [false, true] {
        // Every attempt: psdock is the main pid, setting up, then ready
        // (a second READY=1 is one systemd accepts and ignores).
        assert_eq!(sd.from(pid), format!("MAINPID={pid}\nSTATUS=starting"));
        assert_eq!(sd.from(pid), "READY=1\nSTATUS=running");
        assert_eq!(run.line(), "started");
        run.send_line("end");
        let wanted = if last {
            "STOPPING=1\nSTATUS=stopping"
        } else {
            "STATUS=restarting in 1s 500ms"
        };
        assert_eq!(sd.from(pid), wanted);
    }
    let out = sb.ends(run, 3);
    assert_eq!(stderr(&out), "");
    assert_eq!(sd.within(Duration::from_millis(100)), None);
}

#[test]
fn a_sigterm_during_the_wait_between_attempts_is_stopping() {
    let sb = Sandbox::new();
    let sd = Notifications::at_path(&sb);
    let run = Running::start(
        sb.psdock()
            .env("NOTIFY_SOCKET", &sd.address)
            .args(["-restart", "always", "-restart-delay", "1h"])
            .args(sh("exit 5")),
    );
    let pid = run.pid();
    assert_eq!(sd.from(pid), format!("MAINPID={pid}\nSTATUS=starting"));
    assert_eq!(sd.from(pid), "READY=1\nSTATUS=running");
    assert_eq!(sd.from(pid), "STATUS=restarting in 1h");
    run.signal(Signal::SIGTERM);
    assert_eq!(sd.from(pid), "STOPPING=1\nSTATUS=stopping");
    let out = sb.ends(run, 5);
    assert_eq!(stderr(&out), "");
    sb.assert_clean();
}
