//! The tcp and tls sinks against real listeners on 127.0.0.1: psdock dials,
//! the container gets a terminal with echo off, and the peer's going away
//! terminates the command as SIGTERM would.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::util::*;

fn listen() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads from `peer` until `needle` has been seen; returns everything read.
fn read_until(peer: &mut impl Read, needle: &str) -> String {
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

const DIALOGUE: &str = "echo ready; read x; echo \"got $x\"; tty";

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

#[test]
fn the_peer_closing_terminates_the_command_as_sigterm_would() {
    for (script, expected) in [
        // Catches SIGTERM: gets it, and its own exit code is psdock's.
        (
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
            7,
        ),
        // PID 1 without a handler: SIGKILL, and psdock says 128+SIGTERM.
        ("echo ready; exec sleep 1000", 143),
    ] {
        let sb = Sandbox::new();
        let (child, mut peer) = tcp_session(&sb, &["sh", "-c", script]);
        read_until(&mut peer, "ready");
        drop(peer);
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), expected, "{script}: {}", stderr(&out));
        assert_eq!(stderr(&out), "");
        sb.assert_clean();
    }
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

#[test]
fn a_peer_that_stops_reading_holds_the_command_and_psdock_stays_small() {
    let sb = Sandbox::new();
    let (child, mut peer) = tcp_session(&sb, &["yes", "a line of output that goes nowhere"]);
    read_until(&mut peer, "nowhere");
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    let init: u32 = std::fs::read_to_string(&children)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // `yes` never sleeps unless a write blocks: sleeping for a while means held.
    let mut asleep = 0;
    wait_for("the command to block on its writes", || {
        let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
        let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
        asleep = if state == 'S' { asleep + 1 } else { 0 };
        (asleep >= 40).then_some(())
    });
    let rss = rss_anon_kib(child.id());
    assert!(rss < 4 * 1024, "psdock's anonymous RSS is {rss} KiB");
    // Reading again lets it go on.
    let mut buf = vec![0u8; 1 << 20];
    peer.read_exact(&mut buf).unwrap();
    drop(peer);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    sb.assert_clean();
}

/// Test certificates: two CAs, a `localhost` server certificate and a client
/// certificate, both from the first CA, written as PEM files.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server: Arc<rustls::ServerConfig>,
    server_mtls: Arc<rustls::ServerConfig>,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, rcgen::Issuer::new(params, key))
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.extended_key_usages = vec![usage];
    let key = rcgen::KeyPair::generate().unwrap();
    (params.signed_by(&key, issuer).unwrap(), key)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Pki {
    fn new(dir: &Path) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let (ca_cert, issuer) = ca("psdock test CA");
        let (other_cert, _) = ca("some other CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &issuer,
            &["client"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        let write = |name: &str, pem: String| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        let chain = vec![server_cert.der().clone()];
        let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key())
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_cert.der().to_vec()))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let server_mtls = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key())
            .unwrap();
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            server: Arc::new(server),
            server_mtls: Arc::new(server_mtls),
        }
    }
}

/// A TLS server for one connection, in a thread: runs the dialogue and
/// returns what it read, or the handshake's error.
fn tls_server(
    config: Arc<rustls::ServerConfig>,
) -> (u16, std::thread::JoinHandle<Result<String, String>>) {
    let (l, port) = listen();
    let t = std::thread::spawn(move || {
        let sock = accept(&l);
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        let mut got = read_until(&mut tls, "ready\r\n");
        tls.write_all(b"hello\n").unwrap();
        got += &read_until(&mut tls, "/dev/pts/0\r\n");
        // Until psdock closes, which it does once the command has ended.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        Ok(got + &String::from_utf8_lossy(&rest))
    });
    (port, t)
}

fn tls_run(
    sb: &Sandbox,
    server: Arc<rustls::ServerConfig>,
    flags: &[&str],
    env: Option<&Path>,
) -> (std::process::Output, Result<String, String>) {
    let (port, t) = tls_server(server);
    let mut cmd = sb.psdock();
    if let Some(file) = env {
        cmd.env("SSL_CERT_FILE", file);
    }
    let out = cmd
        .args(["-stdio", &format!("tls://localhost:{port}")])
        .args(flags)
        .args(["sh", "-c", DIALOGUE])
        .output()
        .unwrap();
    (out, t.join().unwrap())
}

#[test]
fn tls_with_the_right_ca_works() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let ca = pki.ca.to_str().unwrap();
    let (out, served) = tls_run(&sb, pki.server.clone(), &["-tls-ca", ca], None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(served.unwrap(), "ready\r\ngot hello\r\n/dev/pts/0\r\n");
    sb.assert_clean();
}

#[test]
fn tls_uses_the_system_roots_by_default() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    // rustls-native-certs reads SSL_CERT_FILE as the system's bundle.
    let (out, served) = tls_run(&sb, pki.server.clone(), &[], Some(&pki.ca));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(served.is_ok());
    sb.assert_clean();
}

#[test]
fn tls_with_a_wrong_ca_is_125_before_the_container_starts() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let ctl = sb.path("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let bind = format!("{}:/ctl", ctl.display());
    for flags in [vec!["-tls-ca", pki.other_ca.to_str().unwrap()], vec![]] {
        let (port, server) = tls_server(pki.server.clone());
        let url = format!("tls://localhost:{port}");
        let out = sb
            .psdock()
            .args(["-v", &bind, "-stdio", &url])
            .args(&flags)
            .args(["touch", "/ctl/ran"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 125, "{flags:?}");
        assert!(
            stderr(&out).starts_with(&format!(
                "psdock: -stdio {url}: TLS handshake failed: invalid peer certificate"
            )),
            "{}",
            stderr(&out)
        );
        assert!(server.join().unwrap().is_err());
        assert!(!ctl.join("ran").exists(), "the command ran");
        sb.assert_clean();
    }
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let flags = [
        "-tls-ca",
        pki.ca.to_str().unwrap(),
        "-tls-cert",
        pki.client_cert.to_str().unwrap(),
        "-tls-key",
        pki.client_key.to_str().unwrap(),
    ];
    let (out, served) = tls_run(&sb, pki.server_mtls.clone(), &flags, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(served.unwrap(), "ready\r\ngot hello\r\n/dev/pts/0\r\n");
    sb.assert_clean();
}

#[test]
fn tls_insecure_skips_verification_and_says_so() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let (out, served) = tls_run(&sb, pki.server.clone(), &["-tls-insecure"], None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(served.is_ok());
    assert_eq!(
        stderr(&out),
        "psdock: warning: -tls-insecure: the certificate of localhost is not verified; \
         anyone on the way can read and drive the session\n"
    );
    sb.assert_clean();
}
