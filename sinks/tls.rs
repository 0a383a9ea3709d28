//! `tls`: `tls://host:port`, the `tcp` sink over TLS (rustls with the ring
//! provider). Picked by the `tls` scheme.
//!
//! The peer's certificate is verified against the system's roots (and
//! `-tls-ca`); `-tls-cert`/`-tls-key` present a client certificate;
//! `-tls-insecure` alone skips verification, with a warning. The handshake
//! completes before the container exists, so a bad certificate is psdock's
//! error and leaves nothing behind.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ProtocolVersion, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::plugin::{
    always_usable, Descriptor, LocalFuture, PluginError, Stdio, StdioSink, StdioSpec,
};
use crate::stdio::{remote, TlsFiles};
use crate::tls_trust::{self, read_certs, Asked};

struct Tls;

inventory::submit! {
    Descriptor::<dyn StdioSink> {
        name: "tls",
        feature: "stdio-tls",
        priority: 0,
        summary: "an interactive terminal over a verified TLS connection psdock dials",
        probe: always_usable,
        build: Some(|_| Box::new(Tls)),
    }
}

impl StdioSink for Tls {
    fn flags(&self) -> &'static [&'static str] {
        &["-tls-ca", "-tls-cert", "-tls-insecure"]
    }

    fn open<'a>(&'a self, spec: &'a StdioSpec) -> LocalFuture<'a, Result<Stdio, PluginError>> {
        Box::pin(async move {
            let fail = |why: String| format!("-stdio {}: {why}", spec.url);
            // Bad certificate files are found before anything is dialed.
            let config = client_config(&spec.tls)?;
            let (host, tcp) = remote::connect(spec).await?;
            let name = ServerName::try_from(host.clone()).map_err(|e| fail(e.to_string()))?;
            if spec.tls.insecure {
                eprintln!(
                    "psdock: warning: -tls-insecure: the certificate of {host} is not verified; \
                     anyone on the way can read and drive the session"
                );
            }
            let asked = Asked {
                host: &host,
                ca: spec.tls.ca.as_ref(),
                cert: spec.tls.cert.as_ref(),
            };
            let explain = |e: io::Error| match tls_trust::find(&e) {
                Some(tls) => fail(
                    tls_trust::explain(tls, &asked)
                        .unwrap_or_else(|| format!("TLS handshake failed: {tls}")),
                ),
                None => fail(format!("TLS handshake failed: {e}")),
            };
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let mut stream =
                tokio::time::timeout(remote::CONNECT_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| fail("TLS handshake timed out".into()))?
                    .map_err(explain)?;
            if spec.tls.cert.is_some() {
                client_cert_accepted(&mut stream).await.map_err(explain)?;
            }
            Ok(remote::stdio(stream, spec))
        })
    }
}

/// How long, after a TLS 1.3 handshake with a client certificate, psdock
/// waits for the server to say whether it took it.
const VERDICT_WAIT: Duration = Duration::from_secs(2);

/// In TLS 1.3 the client's handshake ends before the server has read the
/// client's certificate: a server that refuses it says so with an alert one
/// round trip later, after the container would have started. So psdock waits
/// for the server's first record: an alert is the refusal; anything else
/// (servers send session tickets at once: rustls, OpenSSL and Go do) or the
/// peer's data is acceptance, and so is silence for [`VERDICT_WAIT`], as a
/// refusal would have come by then. TLS 1.2 needs none of this: there the
/// server's Finished, which the handshake waited for, follows its verdict.
async fn client_cert_accepted(stream: &mut TlsStream<TcpStream>) -> io::Result<()> {
    let (tcp, conn) = stream.get_mut();
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return Ok(());
    }
    let listen = async {
        loop {
            tcp.readable().await?;
            let read = conn.read_tls(&mut Sync(tcp));
            let n = match read {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => other?,
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection right after the handshake",
                ));
            }
            // The alert, if any: rustls's own error, read by `explain`.
            conn.process_new_packets().map_err(io::Error::other)?;
            return Ok(());
        }
    };
    tokio::time::timeout(VERDICT_WAIT, listen)
        .await
        .unwrap_or(Ok(()))
}

/// rustls reads records with `std::io::Read`; the socket is non-blocking, so
/// this never waits (`WouldBlock` instead).
struct Sync<'a>(&'a TcpStream);

impl io::Read for Sync<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

fn client_config(tls: &TlsFiles) -> Result<ClientConfig, PluginError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(tls_trust::verifier(tls.ca.as_deref(), provider)?)
    };
    Ok(match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs("-tls-cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("-tls-key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("-tls-cert {}: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    })
}

/// `-tls-insecure`: any certificate is accepted, but the handshake signatures
/// are still checked, so the connection is at least to whoever holds the key
/// of the certificate shown.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
