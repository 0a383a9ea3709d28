//! The tls sink against real rustls servers on 127.0.0.1 with rcgen
//! certificates: what is trusted (roots, -tls-ca, a pinned self-signed
//! certificate), mutual TLS, and each refusal in one line with its fix,
//! always before the command runs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stdio_net::{accept, listen, read_until, DIALOGUE};
use crate::util::*;

/// Test certificates: two CAs, a `localhost` server certificate and a client
/// certificate, both from the first CA, written as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
    server_mtls: Arc<rustls::ServerConfig>,
    server_strict: Arc<rustls::ServerConfig>,
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
    pub fn new(dir: &Path) -> Self {
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
        let server_strict = server_with(&server_cert, &server_key, Some(&other_cert));
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            server: Arc::new(server),
            server_mtls: Arc::new(server_mtls),
            server_strict,
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

type Key = rustls::pki_types::PrivateKeyDer<'static>;

fn der_key(key: &rcgen::KeyPair) -> Key {
    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

/// A server presenting `cert`; with `clients`, it asks for a client
/// certificate and accepts only those that CA signed.
fn server_with(
    cert: &rcgen::Certificate,
    key: &rcgen::KeyPair,
    clients: Option<&rcgen::Certificate>,
) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(
        builder
            .with_single_cert(vec![cert.der().clone()], der_key(key))
            .unwrap(),
    )
}

/// `openssl req -x509 -newkey ... -subj /CN=localhost -addext
/// subjectAltName=...`: self-signed, and marked a CA (basicConstraints
/// CA:TRUE), with the given validity.
fn self_signed_ca(
    names: &[&str],
    dates: Option<(i32, i32)>,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    if let Some((from, to)) = dates {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

/// psdock with `-stdio tls://localhost:PORT` to `server` and `flags`, for a
/// command that must not run: exit 125, the one line of stderr returned,
/// nothing left behind.
fn refused_before_start(sb: &Sandbox, server: Arc<rustls::ServerConfig>, flags: &[&str]) -> String {
    let ctl = sb.path("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    let (port, served) = tls_server(server);
    let url = format!("tls://localhost:{port}");
    let out = sb
        .psdock()
        .args(["-v", &format!("{}:/ctl", ctl.display()), "-stdio", &url])
        .args(flags)
        .args(["touch", "/ctl/ran"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 125, "{flags:?}: {}", stderr(&out));
    assert!(served.join().unwrap().is_err(), "the server served");
    assert!(!ctl.join("ran").exists(), "the command ran");
    sb.assert_clean();
    let e = stderr(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    let prefix = format!("psdock: -stdio {url}: ");
    e.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{e}"))
        .trim_end()
        .to_owned()
}

fn write_pem(sb: &Sandbox, name: &str, cert: &rcgen::Certificate) -> String {
    let path = sb.path(name);
    std::fs::write(&path, cert.pem()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `e` is `before`, the time of the check (this minute), then `after`.
fn assert_now(e: &str, before: &str, after: &str) {
    let now = e
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .unwrap_or_else(|| panic!("{e}"));
    let then = humantime::parse_rfc3339(now).unwrap_or_else(|_| panic!("{e}"));
    let age = std::time::SystemTime::now().duration_since(then).unwrap();
    assert!(age < std::time::Duration::from_secs(60), "{e}");
}

#[test]
fn a_self_signed_ca_certificate_given_as_tls_ca_is_the_servers_own() {
    let sb = Sandbox::new();
    let (cert, key) = self_signed_ca(&["localhost"], None);
    let pinned = write_pem(&sb, "self.pem", &cert);
    let server = server_with(&cert, &key, None);
    let (out, served) = tls_run(&sb, server.clone(), &["-tls-ca", &pinned], None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(served.unwrap(), "ready\r\ngot hello\r\n/dev/pts/0\r\n");
    sb.assert_clean();

    // Not given: a CA certificate is still no server's.
    assert_eq!(
        refused_before_start(&sb, server, &[]),
        "the certificate of localhost is a CA certificate, not a server's; \
         to trust it as localhost's own, give it with -tls-ca FILE"
    );
}

#[test]
fn a_pinned_certificate_is_still_checked_for_its_name_and_dates() {
    let sb = Sandbox::new();
    let (cert, key) = self_signed_ca(&["other.example", "10.1.2.3"], None);
    let pinned = write_pem(&sb, "self.pem", &cert);
    assert_eq!(
        refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &pinned]),
        "the certificate of localhost is for other.example, 10.1.2.3, not localhost; \
         connect to one of those names"
    );
    let (cert, key) = self_signed_ca(&["localhost"], Some((2010, 2020)));
    let pinned = write_pem(&sb, "old.pem", &cert);
    let e = refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &pinned]);
    assert_now(
        &e,
        "the certificate of localhost expired at 2020-01-01T00:00:00Z (it is now ",
        ")",
    );
}

#[test]
fn certificate_failures_are_one_line_with_the_fix() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    let other = pki.other_ca.to_str().unwrap();
    assert_eq!(
        refused_before_start(&sb, pki.server.clone(), &[]),
        "the certificate of localhost is not signed by a CA this system trusts; \
         give the CA's certificate (or the server's own) with -tls-ca FILE"
    );
    assert_eq!(
        refused_before_start(&sb, pki.server.clone(), &["-tls-ca", other]),
        format!(
            "the certificate of localhost is not signed by a CA in -tls-ca {other} or the \
             system's roots; give the CA that signed it (or the server's own certificate) \
             with -tls-ca"
        )
    );
    let (ca_cert, issuer) = ca("dated CA");
    let ca_pem = write_pem(&sb, "dated-ca.pem", &ca_cert);
    let signed = |names: &[&str], from: i32, to: i32| {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, &issuer).unwrap(), key)
    };
    let (cert, key) = signed(&["db.internal", "*.db.internal"], 2000, 4000);
    assert_eq!(
        refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &ca_pem]),
        "the certificate of localhost is for db.internal, *.db.internal, not localhost; \
         connect to one of those names"
    );
    // `openssl req -subj /CN=localhost` alone: webpki reads only the
    // subjectAltName.
    let (cert, key) = signed(&[], 2000, 4000);
    assert_eq!(
        refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &ca_pem]),
        "the certificate of localhost names no host in its subjectAltName (the CN is not \
         used); make it with subjectAltName=DNS:localhost"
    );
    let dated = |from, to| signed(&["localhost"], from, to);
    let (cert, key) = dated(2000, 2001);
    let e = refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &ca_pem]);
    assert_now(
        &e,
        "the certificate of localhost expired at 2001-01-01T00:00:00Z (it is now ",
        ")",
    );
    let (cert, key) = dated(3000, 3001);
    let e = refused_before_start(&sb, server_with(&cert, &key, None), &["-tls-ca", &ca_pem]);
    assert_now(
        &e,
        "the certificate of localhost is not valid before 3000-01-01T00:00:00Z (it is now ",
        "); check the clocks",
    );
}

#[test]
fn a_server_that_refuses_the_client_certificate_is_125_before_the_command_runs() {
    let sb = Sandbox::new();
    let pki = Pki::new(sb.dir.path());
    // server_strict trusts only a CA that did not sign psdock's certificate.
    // In TLS 1.3 its refusal comes after psdock's side of the handshake is
    // done, when the command would already be starting.
    let cert = pki.client_cert.to_str().unwrap();
    let flags = [
        "-tls-ca",
        pki.ca.to_str().unwrap(),
        "-tls-cert",
        cert,
        "-tls-key",
        pki.client_key.to_str().unwrap(),
    ];
    assert_eq!(
        refused_before_start(&sb, pki.server_strict.clone(), &flags),
        format!("localhost refused the client certificate -tls-cert {cert} (unknown CA)")
    );
}

// A TLS peer going away hangs the command up as a tcp one does, whether it
// says so (close_notify) or simply drops the connection: an interactive
// shell, which ignores SIGTERM, ends with 129 and psdock says nothing.
#[test]
fn an_interactive_shell_whose_tls_peer_goes_away_ends_with_129() {
    for polite in [true, false] {
        let sb = Sandbox::new();
        let pki = Pki::new(sb.dir.path());
        let (l, port) = listen();
        let child = sb
            .psdock()
            .args(["-stdio", &format!("tls://localhost:{port}")])
            .args(["-tls-ca", pki.ca.to_str().unwrap(), "sh"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let conn = rustls::ServerConnection::new(pki.server.clone()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, accept(&l));
        tls.write_all(b"echo re''ady\n").unwrap();
        read_until(&mut tls, "ready");
        if polite {
            tls.conn.send_close_notify();
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        drop(tls);
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 129, "polite {polite}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "polite {polite}");
        sb.assert_clean();
    }
}
