//! The syslog sinks against real receivers: a unix datagram socket the test
//! binds and mounts over /dev/log in a private mount namespace (an overlay
//! on /dev, so the host's /dev is untouched), and UDP, TCP and TLS listeners
//! on loopback port 0.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Output;

use crate::stdio_journald::in_namespace;
use crate::stdio_net::{accept, listen};
use crate::stdio_tls::Pki;
use crate::util::*;

/// Shell lines giving a private mount namespace its own /dev (an overlay on
/// the host's, with the pts, shm and mqueue mounts put back) with no
/// /dev/log, or `log` bound over it.
fn dev_with_log(sb: &Sandbox, log: Option<&Path>) -> String {
    let t = sb.path("dev");
    let t = t.display();
    let mut setup = format!(
        "mkdir -p {t}/up {t}/work {t}/host
         mount --rbind /dev {t}/host
         mount -t overlay psdock-test -o lowerdir=/dev,upperdir={t}/up,workdir={t}/work /dev
         for m in pts shm mqueue; do
             if mountpoint -q {t}/host/$m; then mount --rbind {t}/host/$m /dev/$m; fi
         done
         rm -f /dev/log"
    );
    if let Some(log) = log {
        setup += &format!("\ntouch /dev/log\nmount --bind {} /dev/log", log.display());
    }
    setup
}

/// Runs psdock with `args` in a namespace prepared by `setup`; returns its
/// output and its pid (the wrapper execs into psdock).
fn run_in(sb: &Sandbox, setup: &str, args: &[&str]) -> (Output, u32) {
    let mut cmd = sb.psdock();
    cmd.args(args);
    let mut run = Running::start(&mut in_namespace(setup, &cmd));
    drop(run.child.stdin.take());
    let pid = run.child.id();
    (run.finish(), pid)
}

fn datagrams(recv: impl Fn(&mut [u8]) -> std::io::Result<usize>) -> Vec<String> {
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    while let Ok(n) = recv(&mut buf) {
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    got
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` -> (PRI, TAG[PID], MSG), checking the
/// timestamp's shape.
fn rfc3164(m: &str) -> (&str, &str, &str) {
    let (pri, rest) = m[1..].split_once('>').expect(m);
    let (stamp, rest) = rest.split_at(15);
    let b = stamp.as_bytes();
    assert!(MONTHS.contains(&&stamp[..3]), "{m}");
    assert!(
        b[3] == b' ' && (b[4] == b' ' || b[4].is_ascii_digit()),
        "{m}"
    );
    assert!(b[5].is_ascii_digit() && b[6] == b' ', "{m}");
    assert!(b[9] == b':' && b[12] == b':', "{m}");
    let (who, msg) = rest[1..].split_once(": ").expect(m);
    (pri, who, msg)
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID - - MSG` -> (PRI, APP, PROCID, MSG).
fn rfc5424(m: &str) -> (&str, &str, &str, &str) {
    let parts: Vec<&str> = m.splitn(8, ' ').collect();
    assert_eq!(parts.len(), 8, "{m}");
    let (pri, version) = parts[0][1..].split_once('>').expect(m);
    assert_eq!(version, "1", "{m}");
    // 2026-12-05T01:52:03.123456Z
    let ts = parts[1].as_bytes();
    assert!(
        ts.len() == 27 && ts[10] == b'T' && ts[19] == b'.' && ts[26] == b'Z',
        "{m}"
    );
    assert_eq!((parts[5], parts[6]), ("-", "-"), "{m}");
    (pri, parts[3], parts[4], parts[7])
}

/// Splits an octet-counted stream (RFC 6587) into its messages.
fn frames(mut stream: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let sp = stream.iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&stream[..sp]).unwrap().parse().unwrap();
        out.push(String::from_utf8(stream[sp + 1..sp + 1 + len].to_vec()).unwrap());
        stream = &stream[sp + 1 + len..];
    }
    out
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

const LINES: &str = "echo one; echo two >&2; printf 'no newline'";

#[test]
fn local_messages_are_what_libc_syslog_writes() {
    let sb = Sandbox::new();
    let sock_path = sb.path("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let setup = dev_with_log(&sb, Some(&sock_path));
    let (out, pid) = run_in(
        &sb,
        &setup,
        &[
            "-stdio",
            "syslog://",
            "-stdout-prefix",
            "[web] ",
            "sh",
            "-c",
            LINES,
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    sock.set_nonblocking(true).unwrap();
    let got = datagrams(|b| sock.recv(b));
    let who = format!("sh[{pid}]");
    let mut parsed: Vec<_> = got.iter().map(|m| rfc3164(m)).collect();
    parsed.sort();
    // daemon (3): info 3*8+6, err 3*8+3.
    assert_eq!(
        parsed,
        [
            ("27", who.as_str(), "[web] two"),
            ("30", who.as_str(), "[web] no newline"),
            ("30", who.as_str(), "[web] one"),
        ]
    );
    sb.assert_clean();
}

#[test]
fn local_with_tag_and_facility() {
    let sb = Sandbox::new();
    let sock_path = sb.path("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let setup = dev_with_log(&sb, Some(&sock_path));
    let (out, pid) = run_in(
        &sb,
        &setup,
        &[
            "-stdio",
            "syslog://?tag=web&facility=local0",
            "sh",
            "-c",
            "echo a; echo b >&2",
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    sock.set_nonblocking(true).unwrap();
    let got = datagrams(|b| sock.recv(b));
    let who = format!("web[{pid}]");
    let parsed = sorted(got.iter().map(|m| rfc3164(m)).collect());
    // local0 (16): 16*8+6, 16*8+3.
    assert_eq!(
        parsed,
        [("131", who.as_str(), "b"), ("134", who.as_str(), "a")]
    );
}

#[test]
fn no_dev_log_is_refused_before_the_container_starts() {
    let sb = Sandbox::new();
    let (out, _) = run_in(
        &sb,
        &dev_with_log(&sb, None),
        &["-stdio", "syslog://", "true"],
    );
    assert_eq!(code(&out), 125, "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("-stdio syslog://: nothing listening on /dev/log"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    sb.assert_clean();
}

#[test]
fn udp_datagrams_are_rfc5424() {
    let sb = Sandbox::new();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let url = format!("syslog+udp://127.0.0.1:{port}?tag=web&facility=local0");
    let mut run = sb.spawn(["-stdio", &url, "-stdout-prefix", "> ", "sh", "-c", LINES]);
    let pid = run.child.id().to_string();
    drop(run.child.stdin.take());
    let out = run.finish();
    assert_eq!(code(&out), 0, "{out:?}");
    sock.set_nonblocking(true).unwrap();
    let got = datagrams(|b| sock.recv(b));
    let parsed = sorted(got.iter().map(|m| rfc5424(m)).collect());
    assert_eq!(
        parsed,
        [
            ("131", "web", pid.as_str(), "> two"),
            ("134", "web", pid.as_str(), "> no newline"),
            ("134", "web", pid.as_str(), "> one"),
        ]
    );
    sb.assert_clean();
}

/// Reads one connection to its end, in a thread.
fn receive(l: TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut peer = accept(&l);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    })
}

#[test]
fn tcp_messages_are_octet_counted_and_long_lines_bounded() {
    let sb = Sandbox::new();
    let (l, port) = listen();
    let got = receive(l);
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let mut run = sb.spawn([
        "-stdio",
        &url,
        "sh",
        "-c",
        "head -c 20000 /dev/zero | tr '\\0' x; echo; \
         head -c 70000 /dev/zero | tr '\\0' y; echo; echo 'in between'; echo bad >&2",
    ]);
    let pid = run.child.id().to_string();
    drop(run.child.stdin.take());
    let out = run.finish();
    assert_eq!(code(&out), 0, "{out:?}");
    let got = got.join().unwrap();
    let messages = frames(&got);
    let parsed: Vec<_> = messages.iter().map(|m| rfc5424(m)).collect();
    let stdout: Vec<&str> = parsed.iter().filter(|p| p.0 == "30").map(|p| p.3).collect();
    let x = "x".repeat(20000);
    let y = "y".repeat(70000);
    // A line over 64 KiB goes out in two messages, in order.
    assert_eq!(stdout, [&x[..], &y[..65536], &y[65536..], "in between"]);
    assert!(
        parsed.contains(&("27", "sh", pid.as_str(), "bad")),
        "{parsed:?}"
    );
    assert_eq!(parsed.len(), 5);
    sb.assert_clean();
}

#[test]
fn tcp_refused_is_refused_before_the_container_starts() {
    let sb = Sandbox::new();
    let (l, port) = listen();
    drop(l);
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let out = sb.run(["-stdio", &url, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("-stdio {url}: cannot connect")),
        "{err}"
    );
    sb.assert_clean();
}

/// A TLS receiver for one connection, in a thread: what it read to the end.
fn tls_receiver(pki: &Pki) -> (u16, std::thread::JoinHandle<std::io::Result<Vec<u8>>>) {
    let (l, port) = listen();
    let config = pki.server.clone();
    let t = std::thread::spawn(move || {
        let sock = accept(&l);
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut got = Vec::new();
        tls.read_to_end(&mut got)?;
        Ok(got)
    });
    (port, t)
}

#[test]
fn tls_is_verified_like_tls_and_octet_counted() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let (port, got) = tls_receiver(&pki);
    let url = format!("syslog+tls://localhost:{port}?tag=secure");
    let ca = pki.ca.to_str().unwrap();
    let out = sb.run(["-stdio", &url, "-tls-ca", ca, "sh", "-c", "echo over tls"]);
    assert_eq!(code(&out), 0, "{out:?}");
    // psdock closes cleanly (close_notify) once the command has ended.
    let got = got.join().unwrap().unwrap();
    let messages = frames(&got);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (pri, app, _, msg) = rfc5424(&messages[0]);
    assert_eq!((pri, app, msg), ("30", "secure", "over tls"));
    sb.assert_clean();
}

#[test]
fn tls_without_trust_is_refused_before_the_container_starts() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let (port, server) = tls_receiver(&pki);
    let url = format!("syslog+tls://localhost:{port}");
    let out = sb.run(["-stdio", &url, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    let err = stderr(&out);
    assert!(err.starts_with(&format!("psdock: -stdio {url}: ")), "{err}");
    assert!(err.contains("-tls-ca"), "the fix is named: {err}");
    assert!(server.join().unwrap().is_err());
    sb.assert_clean();
}

#[test]
fn tls_flags_are_refused_by_the_other_syslog_sinks() {
    let sb = Sandbox::new();
    let out = sb.run([
        "-stdio",
        "syslog+tcp://127.0.0.1:9",
        "-tls-ca",
        "/x",
        "true",
    ]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(
        stderr(&out).contains("-tls-ca is not supported by -stdio syslog+tcp://127.0.0.1:9"),
        "{out:?}"
    );
}

/// Whether the IPv4 TCP socket bound to local `port` is in CLOSE_WAIT: it
/// has its peer's FIN.
fn close_wait(port: u16) -> bool {
    const CLOSE_WAIT: &str = "08";
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[1].ends_with(&format!(":{port:04X}")) && f[3] == CLOSE_WAIT
        })
}

#[test]
fn a_tcp_receiver_that_goes_away_holds_the_command_until_it_is_back() {
    let sb = Sandbox::new();
    let sync = sb.path("sync");
    std::fs::create_dir(&sync).unwrap();
    let go = sync.join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (l, port) = listen();
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let err_path = sb.path("stderr");
    let mut child = sb
        .psdock()
        .args(["-v", &format!("{}:/sync", sync.display()), "-stdio", &url])
        .args(["sh", "-c", "echo first; read x < /sync/go; echo second"])
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut first = accept(&l);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).ends_with(" - - first") {
        let n = first.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    // The receiver goes away, then the command writes again, once psdock's
    // side has the FIN (loopback delivers it asynchronously).
    let psdock_port = first.peer_addr().unwrap().port();
    drop(first);
    drop(l);
    wait_for("psdock's connection to be in CLOSE_WAIT", || {
        close_wait(psdock_port).then_some(())
    });
    std::fs::write(&go, "\n").unwrap();
    let stderr_text = || std::fs::read_to_string(&err_path).unwrap();
    wait_for("psdock to say the command is held", || {
        stderr_text().contains("the command is held").then_some(())
    });
    // Seen before the write, which the kernel would have taken and lost.
    assert!(
        stderr_text().starts_with(&format!(
            "psdock: -stdio {url}: the receiver closed the connection; "
        )),
        "{}",
        stderr_text()
    );
    // Back on the same port: the line written meanwhile arrives.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut second = accept(&l);
    let mut got = Vec::new();
    second.read_to_end(&mut got).unwrap();
    let messages = frames(&got);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(rfc5424(&messages[0]).3, "second");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        stderr_text().contains("delivering again"),
        "{}",
        stderr_text()
    );
    sb.assert_clean();
}

#[test]
fn bad_log_sink_urls_are_125_naming_them_and_leave_nothing() {
    let sb = Sandbox::new();
    for (url, why) in [
        (
            "journald://x",
            "expected journald:// or journald://?tag=NAME",
        ),
        (
            "journald://?facility=daemon",
            "unknown option `facility` (known: tag)",
        ),
        (
            "syslog:///dev/log",
            "expected syslog:// or syslog://?tag=NAME&facility=NAME",
        ),
        (
            "syslog://?facility=nope",
            "facility `nope`: expected daemon, user, local0 to local7, ...",
        ),
        (
            "syslog+udp://127.0.0.1:514?tag=a b",
            "tag `a b`: expected 1 to 48 printable ASCII characters, no spaces",
        ),
        (
            "syslog+udp://127.0.0.1:514?tag=",
            "tag ``: expected 1 to 48 printable ASCII characters, no spaces",
        ),
        ("syslog+tcp://127.0.0.1?tag=x", "expected HOST:PORT"),
        (
            "syslog+tcp://127.0.0.1:1?level=debug",
            "unknown option `level` (known: tag, facility)",
        ),
    ] {
        let out = sb.run(["-stdio", url, "true"]);
        assert_eq!(code(&out), 125, "{url}");
        assert_eq!(
            stderr(&out),
            format!("psdock: -stdio {url}: {why}\n"),
            "{url}"
        );
        sb.assert_clean();
    }
}
