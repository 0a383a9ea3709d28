//! -net none and bridge, and -publish, on real namespaces, veth pairs and
//! bridges. Each bridge test has a bridge and subnet of its own (removed at
//! its end, with its NAT rules), and traffic only goes between the host and
//! namespaces the test made.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::hook::Hook;
use crate::records::{ls, ls_json};
use crate::util::*;

/// A host bridge and subnet of one test's own.
pub struct TestBridge {
    name: String,
    subnet: String,
    /// The third octet's base: 10.B.C.0/24.
    prefix: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

impl TestBridge {
    pub fn new() -> TestBridge {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let prefix = format!("10.{}.{}", 200 + n, pid % 250);
        TestBridge {
            name: format!("pt{}x{n}", pid % 100_000),
            subnet: format!("{prefix}.0/24"),
            prefix,
        }
    }

    pub fn args(&self) -> Vec<String> {
        [
            "-net",
            "bridge",
            "-net-bridge",
            &self.name,
            "-net-subnet",
            &self.subnet,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn gateway(&self) -> Ipv4Addr {
        format!("{}.1", self.prefix).parse().unwrap()
    }

    /// The interfaces on the bridge: the host ends of running containers.
    fn ports(&self) -> Vec<String> {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.name))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
        for rule in [
            vec![
                "-t",
                "nat",
                "-D",
                "POSTROUTING",
                "-s",
                &self.subnet,
                "!",
                "-o",
                &self.name,
                "-j",
                "MASQUERADE",
            ],
            vec!["-D", "FORWARD", "-i", &self.name, "-j", "ACCEPT"],
            vec!["-D", "FORWARD", "-o", &self.name, "-j", "ACCEPT"],
        ] {
            let _ = Command::new("iptables").arg("-w").args(rule).output();
        }
    }
}

/// The running container's record, as psdock-ls shows it, once it has one.
fn running(sb: &Sandbox) -> Value {
    wait_for("the container's entry", || {
        ls_json(sb, false)
            .into_iter()
            .find(|r| r["init_pid"].is_number())
    })
}

fn address(row: &Value) -> Ipv4Addr {
    row["net"]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {row}"))
        .parse()
        .unwrap()
}

/// An HTTP GET of `/` at `at`, once something answers there.
fn get(at: (Ipv4Addr, u16)) -> String {
    let mut s = wait_for("the server to answer", || TcpStream::connect(at).ok());
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    got
}

/// A web root with `index.html` saying `text`, for busybox httpd.
fn www(sb: &Sandbox, text: &str) -> String {
    let dir = sb.path("www");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("index.html"), text).unwrap();
    format!("{}:/www:ro", dir.display())
}

/// The network namespace's inode of process `pid`.
fn netns_of(pid: i32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .ino()
}

/// Whether any process has network namespace `ino` as its own or open.
fn netns_held(ino: u64) -> bool {
    let want = format!("net:[{ino}]");
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        let dir = p.path();
        let own = std::fs::metadata(dir.join("ns/net")).is_ok_and(|m| m.ino() == ino);
        own || std::fs::read_dir(dir.join("fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str())
            })
        })
    })
}

#[test]
fn none_has_only_lo_and_reaches_no_host_service() {
    let sb = Sandbox::new();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let script = format!(
        "ip -o link | cut -d: -f2; ip -o -4 addr show lo | wc -l; nc -w 2 127.0.0.1 {port} </dev/null; echo nc=$?"
    );
    let out = sb.run(["-net", "none", "sh", "-c", &script]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "lo", "{text}");
    assert_eq!(lines[1], "1", "lo is not up with 127.0.0.1: {text}");
    assert!(
        lines.last().unwrap().starts_with("nc=") && *lines.last().unwrap() != "nc=0",
        "{text}"
    );
    assert_eq!(lines.len(), 3, "interfaces other than lo: {text}");
    assert!(
        host.accept().is_err(),
        "the container reached the host's loopback"
    );
    sb.assert_clean();
}

#[test]
fn two_bridge_containers_get_their_own_addresses_and_reach_each_other_and_the_host() {
    let br = TestBridge::new();
    let a = Sandbox::new();
    let web = www(&a, "from a\n");
    let server = a.spawn(
        [
            br.args(),
            ["-v", &web, "httpd", "-f", "-p", "80", "-h", "/www"]
                .map(str::to_owned)
                .to_vec(),
        ]
        .concat(),
    );
    let a_ip = address(&running(&a));
    assert!(
        get((a_ip, 80)).ends_with("from a\n"),
        "the host cannot reach a"
    );
    // The host listens on the bridge's address; b dials it and a.
    let host = TcpListener::bind((br.gateway(), 0)).unwrap();
    let port = host.local_addr().unwrap().port();
    // b shares a's state directory, where addresses are leased, as every
    // psdock on a host does; it has a rootfs of its own.
    let b_rootfs = a.path("rootfs-b");
    let script = format!(
        "ip -o -4 addr show eth0 | awk '{{print $4}}'; wget -q -O- http://{a_ip}/; echo hello host | nc {} {port}",
        br.gateway()
    );
    let accepted = std::thread::spawn(move || {
        let (mut conn, from) = host.accept().unwrap();
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut said = String::new();
        conn.read_to_string(&mut said).unwrap();
        (from, said)
    });
    let out = output(
        a.bare()
            .arg("-i")
            .arg(image())
            .arg("-r")
            .arg(&b_rootfs)
            .arg("-e")
            .arg(a.mark())
            .args(br.args())
            .args(["sh", "-c", &script]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!b_rootfs.exists());
    let text = stdout(&out);
    let b_ip: Ipv4Addr = text
        .lines()
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(a_ip, b_ip);
    assert!(text.contains("from a"), "b cannot reach a: {text}");
    let (from, said) = accepted.join().unwrap();
    assert_eq!(from.ip(), std::net::IpAddr::V4(b_ip));
    assert_eq!(said, "hello host\n");
    server.signal(Signal::SIGTERM);
    a.ends(server, 143);
    assert!(
        br.ports().is_empty(),
        "veth left on the bridge: {:?}",
        br.ports()
    );
}

#[test]
fn a_published_port_answers_on_the_hosts_loopback() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let web = www(&sb, "published\n");
    let server = sb.spawn(
        [
            br.args(),
            [
                "-publish",
                "127.0.0.1::80",
                "-v",
                &web,
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/www",
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat(),
    );
    let row = running(&sb);
    let published = &row["net"]["ports"][0];
    assert_eq!(published["container_port"], 80, "{row}");
    assert_eq!(published["host_ip"], "127.0.0.1", "{row}");
    let port = published["host_port"].as_u64().unwrap() as u16;
    assert_ne!(port, 0);
    assert!(get((Ipv4Addr::LOCALHOST, port)).ends_with("published\n"));
    // The table shows it as docker ps does.
    let table = stdout(&ls(&sb, &[]));
    assert!(
        table.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{table}"
    );
    server.signal(Signal::SIGTERM);
    sb.ends(server, 143);
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "the published port is still open"
    );
}

#[test]
fn a_published_udp_port_carries_datagrams_both_ways() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let echo = static_program("tests/integration/udp_echo.rs");
    let bind = format!("{}:/udp-echo:ro", echo.display());
    let mut run = sb.spawn(
        [
            br.args(),
            [
                "-p",
                "127.0.0.1::5353/udp",
                "-v",
                &bind,
                "/udp-echo",
                "5353",
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat(),
    );
    let row = running(&sb);
    assert_eq!(row["net"]["ports"][0]["proto"], "udp", "{row}");
    let port = row["net"]["ports"][0]["host_port"].as_u64().unwrap() as u16;
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Until nc listens, a datagram finds no one: send again until it answers.
    let mut buf = [0u8; 64];
    let n = wait_for("an answer through the published port", || {
        client.send(b"ping\n").unwrap();
        client.recv(&mut buf).ok()
    });
    assert_eq!(&buf[..n], b"pong\n");
    assert_eq!(run.line(), "ping");
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
}

#[test]
fn a_published_port_taken_on_the_host_is_125_and_leaves_nothing() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = sb.run(
        [
            br.args(),
            ["-p", &publish, "true"].map(str::to_owned).to_vec(),
        ]
        .concat(),
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("psdock: -publish: cannot bind 127.0.0.1:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        br.ports().is_empty(),
        "veth left on the bridge: {:?}",
        br.ports()
    );
    sb.assert_clean();
}

#[test]
fn running_waits_for_a_port_bound_inside_a_bridge_container() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let mut run = sb.spawn(
        [
            br.args(),
            [
                "-web-hook",
                &hook.url(),
                "-bind-port",
                "8080",
                "sh",
                "-c",
                "read _; echo go; exec httpd -f -p 8080 -h /",
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat(),
    );
    hook.wait_for_status("starting");
    run.send_line("go");
    assert_eq!(run.line(), "go");
    hook.wait_for_status("running");
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
}

/// Starts `sleep` in a bridge container and returns psdock, the container's
/// network namespace and its host-side interface.
fn sleeper(sb: &Sandbox, br: &TestBridge) -> (Running, u64) {
    let run = sb.spawn([br.args(), ["sleep", "1000"].map(str::to_owned).to_vec()].concat());
    let init = run.init();
    running(sb);
    assert_eq!(br.ports().len(), 1, "{:?}", br.ports());
    (run, netns_of(init))
}

#[test]
fn psdock_exec_joins_the_containers_network() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let (run, _) = sleeper(&sb, &br);
    let row = running(&sb);
    let id = row["id"].as_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_psdock-exec"))
        .env("PSDOCK_STATE_DIR", sb.state_dir())
        .args([id, "ip", "-o", "-4", "addr", "show", "eth0"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want = format!("inet {}/24", address(&row));
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
}

#[test]
fn nothing_is_left_after_a_normal_end_a_sigterm_and_a_sigkill_with_prune() {
    let br = TestBridge::new();
    // A normal end.
    let sb = Sandbox::new();
    let out = sb.run([br.args(), ["true"].map(str::to_owned).to_vec()].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(br.ports().is_empty());
    sb.assert_clean();
    // SIGTERM: psdock takes the pair down itself.
    let (run, ns) = sleeper(&sb, &br);
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
    assert!(br.ports().is_empty(), "{:?}", br.ports());
    assert!(!netns_held(ns), "the namespace outlived psdock");
    // SIGKILL: the kernel ends the namespace with its last process, and
    // --prune gives the address back.
    let (run, ns) = sleeper(&sb, &br);
    run.signal(Signal::SIGKILL);
    let _ = run.finish();
    wait_for("the namespace and its veth pair to go", || {
        (br.ports().is_empty() && !netns_held(ns)).then_some(())
    });
    let pruned = ls(&sb, &["--prune"]);
    assert_eq!(code(&pruned), 0, "{}", stderr(&pruned));
    sb.assert_clean();
}

#[test]
fn outbound_traffic_is_masqueraded_behind_the_host() {
    let br = TestBridge::new();
    // "Outside": a namespace of the test's own, linked to the host by a veth
    // pair on a /30 of 10.199.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let outside = format!("po{}x{n}", std::process::id() % 100_000);
    let near = format!("{outside}a");
    let far_ip = format!("10.199.{}.2", n % 250);
    let near_ip = format!("10.199.{}.1", n % 250);
    ip(&["netns", "add", &outside]);
    struct Gone(String, String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.1]).status();
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(outside.clone(), near.clone());
    ip(&[
        "link", "add", &near, "type", "veth", "peer", "name", "eth0", "netns", &outside,
    ]);
    ip(&["addr", "add", &format!("{near_ip}/30"), "dev", &near]);
    ip(&["link", "set", &near, "up"]);
    ip(&[
        "-n",
        &outside,
        "addr",
        "add",
        &format!("{far_ip}/30"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &outside, "link", "set", "eth0", "up"]);
    // A listener inside "outside", made by a thread that enters it.
    let ns = std::fs::File::open(format!("/run/netns/{outside}")).unwrap();
    let listener = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind("0.0.0.0:0").unwrap()
    })
    .join()
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    let script = format!("echo out | nc {far_ip} {port}");
    let run = sb.spawn([br.args(), ["sh", "-c", &script].map(str::to_owned).to_vec()].concat());
    listener.set_nonblocking(false).unwrap();
    let (mut conn, from) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut said = String::new();
    conn.read_to_string(&mut said).unwrap();
    assert_eq!(said, "out\n");
    // nc waits for the far end to close.
    drop(conn);
    // The outside saw the host's address on its link, not the container's.
    assert_eq!(from.ip().to_string(), near_ip);
    sb.ends(run, 0);
}

#[test]
fn bad_network_flags_are_125_naming_the_flag() {
    let sb = Sandbox::new();
    for (args, said) in [
        (&["-net", "wifi"][..], "psdock: -net wifi: unknown net implementation `wifi`"),
        (&["-net", "none", "-p", "80"][..], "psdock: -publish needs -net bridge"),
        (&["-net-subnet", "10.0.0.0/8"][..], "psdock: -net-subnet needs -net bridge"),
        (
            &["-net", "bridge", "-net-subnet", "10.0.0.1/24"][..],
            "psdock: -net-subnet 10.0.0.1/24: has host bits set (give the network address)",
        ),
        (
            &["-net", "bridge", "-net-bridge", "a/b"][..],
            "psdock: -net-bridge \"a/b\": an interface name has no `/`, `:` or blank, and is not `.` or `..`",
        ),
        (
            &["-net", "bridge", "-p", "1:2:3:4"][..],
            "psdock: -publish 1:2:3:4: expected [IP:][HOST_PORT:]PORT[/tcp|/udp]",
        ),
    ] {
        let out = sb.run([args, &["true"]].concat());
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with(said), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        sb.assert_clean();
    }
}

#[test]
fn a_restarted_bridge_container_keeps_its_address_published_port_and_port_probe() {
    let br = TestBridge::new();
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let ctl = sb.path("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let bind = format!("{}:/ctl", ctl.display());
    // Each attempt serves its number until the test writes a line to
    // psdock's stdin, which every attempt inherits; then it fails.
    let script = "echo run >> /ctl/count; n=$(grep -c run /ctl/count); \
                  ip -o -4 addr show eth0 >> /ctl/addrs; \
                  mkdir /w; echo attempt$n > /w/index.html; \
                  httpd -f -p 80 -h /w & read x; kill $!; exit 1";
    let url = hook.url();
    let mut run = sb.spawn(
        [
            br.args(),
            [
                "-web-hook",
                &url,
                "-publish",
                "127.0.0.1::80",
                "-bind-port",
                "80",
                "-port-probe",
                "netlink",
                "-restart",
                "on-failure:1",
                "-restart-delay",
                "1ms",
                "-v",
                &bind,
                "sh",
                "-c",
                script,
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat(),
    );
    let mut seen = Vec::new();
    for (n, event) in [(1, 2), (2, 5)] {
        // `running`: the netlink probe saw this attempt's httpd listen.
        let got = hook.wait_for(event);
        assert_eq!(got[event - 1].status(), "running", "{:?}", got.last());
        let row = running(&sb);
        let port = row["net"]["ports"][0]["host_port"].as_u64().unwrap() as u16;
        let page = get((Ipv4Addr::LOCALHOST, port));
        assert!(page.ends_with(&format!("attempt{n}\n")), "{page}");
        seen.push((
            address(&row),
            port,
            netns_of(row["init_pid"].as_i64().unwrap() as i32),
        ));
        run.send_line("next");
    }
    assert_eq!(
        seen[0], seen[1],
        "(address, published port, netns) per attempt"
    );
    let addrs = std::fs::read_to_string(ctl.join("addrs")).unwrap();
    let want = format!("inet {}/24", seen[0].0);
    assert_eq!(addrs.matches(&want).count(), 2, "{addrs}");
    assert_eq!(code(&run.finish()), 1);
    assert!(br.ports().is_empty(), "{:?}", br.ports());
    sb.assert_clean();
}
