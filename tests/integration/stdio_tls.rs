//! The tls sink against real rustls servers on 127.0.0.1 with rcgen
//! certificates: what is trusted (roots, -tls-ca), mutual TLS, and refusals
//! before the command runs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::stdio_net::{accept, listen, read_until, DIALOGUE};
use crate::util::*;

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
