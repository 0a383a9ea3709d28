//! What `tls://` and `https://` web hooks share about trusting a server: the
//! roots (the system's and `-tls-ca`), pinning a self-signed certificate
//! given as `-tls-ca`, and saying in one line why a certificate was refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore,
    SignatureScheme,
};

/// Why the certificates to trust or present could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{flag} {}: {}", .path.display(), pem_why(.error))]
    Read {
        flag: String,
        path: PathBuf,
        error: pem::Error,
    },
    #[error("{flag} {}: no PEM certificate in it", .path.display())]
    Empty { flag: String, path: PathBuf },
    #[error("-tls-ca {}: {error}", .path.display())]
    Root { path: PathBuf, error: Error },
    #[error("cannot set up certificate verification: {0}")]
    Verifier(rustls::client::VerifierBuilderError),
}

/// A file's own error is what it says: its io error without pem's wrapping.
fn pem_why(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// The PEM certificates of `path`, or an error naming `flag` and the file.
pub fn read_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let fail = |error: pem::Error| TrustError::Read {
        flag: flag.to_owned(),
        path: path.to_owned(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    if certs.is_empty() {
        return Err(TrustError::Empty {
            flag: flag.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The verifier for a server: webpki against the system's roots and those of
/// `-tls-ca` (`ca`), which also pins the certificates it holds.
pub fn verifier(
    ca: Option<&Path>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TrustError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: -tls-ca may be all we need.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let mut pinned = Vec::new();
    if let Some(ca) = ca {
        pinned = read_certs("-tls-ca", ca)?;
        for cert in &pinned {
            roots.add(cert.clone()).map_err(|error| TrustError::Root {
                path: ca.to_owned(),
                error,
            })?;
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(TrustError::Verifier)?;
    Ok(Arc::new(Pinning { webpki, pinned }))
}

/// webpki, except that a CA certificate which is byte for byte one of
/// `-tls-ca`'s is accepted as the server's own, as `curl --cacert` does:
/// `openssl req -x509` makes such self-signed certificates (basicConstraints
/// CA:TRUE), and webpki refuses every CA certificate as an end entity.
///
/// Only `CaUsedAsEndEntity` is forgiven. webpki checks a certificate's dates
/// before its basic constraints, so an expired one is still refused as
/// expired; the name is checked here, and the handshake's signatures by
/// webpki as for any certificate.
#[derive(Debug)]
struct Pinning {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

fn is_ca_used_as_end_entity(e: &Error) -> bool {
    matches!(e, Error::InvalidCertificate(CertificateError::Other(OtherError(o)))
        if matches!(o.downcast_ref(), Some(webpki::Error::CaUsedAsEndEntity)))
}

impl ServerCertVerifier for Pinning {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e) if is_ca_used_as_end_entity(&e) && self.pinned.contains(end_entity) => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// rustls's error behind `e`: reqwest and tokio-rustls hand it on inside
/// `io::Error`s (nested, for reqwest), whose `source` skips it.
pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    if let Some(tls) = e.downcast_ref::<Error>() {
        return Some(tls);
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => find(inner),
        None => find(e.source()?),
    }
}

/// What the user asked to trust and present, for [`explain`]'s advice.
pub struct Asked<'a> {
    pub host: &'a str,
    pub ca: Option<&'a PathBuf>,
    pub cert: Option<&'a PathBuf>,
}

fn date(t: &UnixTime) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t.as_secs()))
}

/// A handshake's failure in one line that says what to do about it, or None
/// when `e` is no certificate matter (the caller's own words do then).
pub fn explain(e: &Error, asked: &Asked) -> Option<String> {
    let host = asked.host;
    let of = format!("the certificate of {host}");
    let cert = match e {
        Error::InvalidCertificate(c) => c,
        Error::AlertReceived(alert) => return refused_alert(*alert, asked),
        _ => return None,
    };
    Some(match cert {
        CertificateError::UnknownIssuer => match asked.ca {
            None => format!(
                "{of} is not signed by a CA this system trusts; \
                 give the CA's certificate (or the server's own) with -tls-ca FILE"
            ),
            Some(ca) => format!(
                "{of} is not signed by a CA in -tls-ca {} or the system's roots; \
                 give the CA that signed it (or the server's own certificate) with -tls-ca",
                ca.display()
            ),
        },
        CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
            format!(
                "{of} names no host in its subjectAltName (the CN is not used); \
                 make it with subjectAltName=DNS:{host}"
            )
        }
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "{of} is for {}, not {host}; connect to one of those names",
            presented
                .iter()
                .map(|n| bare_name(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CertificateError::NotValidForName => format!("{of} is not for the name {host}"),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "{of} expired at {} (it is now {})",
            date(not_after),
            date(time)
        ),
        CertificateError::Expired => format!("{of} has expired"),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "{of} is not valid before {} (it is now {}); check the clocks",
            date(not_before),
            date(time)
        ),
        CertificateError::NotValidYet => format!("{of} is not valid yet; check the clocks"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("{of} is not one for a TLS server (its extended key usage)")
        }
        CertificateError::BadSignature => format!("{of} has a bad signature"),
        CertificateError::Revoked => format!("{of} has been revoked"),
        c if is_ca_used_as_end_entity(&Error::InvalidCertificate(c.clone())) => format!(
            "{of} is a CA certificate, not a server's; \
             to trust it as {host}'s own, give it with -tls-ca FILE"
        ),
        other => format!("{of} is refused: {other}"),
    })
}

/// webpki gives the names as they print in Rust (`DnsName("a.example")`,
/// `IpAddress(10.0.0.1)`): the name alone is what a person types.
fn bare_name(presented: &str) -> &str {
    let inner = ["DnsName(\"", "IpAddress(", "UniformResourceIdentifier(\""]
        .iter()
        .find_map(|p| presented.strip_prefix(p));
    inner
        .and_then(|n| n.strip_suffix(')'))
        .map(|n| n.trim_end_matches('"'))
        .unwrap_or(presented)
}

/// The server's alert during or just after the handshake: with a client
/// certificate, that is the server refusing it.
fn refused_alert(alert: AlertDescription, asked: &Asked) -> Option<String> {
    use AlertDescription as A;
    let what = match alert {
        A::BadCertificate => "bad certificate",
        A::UnsupportedCertificate => "unsupported certificate",
        A::CertificateRevoked => "certificate revoked",
        A::CertificateExpired => "certificate expired",
        A::CertificateUnknown => "certificate unknown",
        A::UnknownCA => "unknown CA",
        A::AccessDenied => "access denied",
        A::CertificateRequired => "certificate required",
        _ => return None,
    };
    Some(match asked.cert {
        Some(cert) => format!(
            "{} refused the client certificate -tls-cert {} ({what})",
            asked.host,
            cert.display()
        ),
        None => format!(
            "{} wants a client certificate ({what}); give -tls-cert FILE -tls-key FILE",
            asked.host
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_or_empty_certificate_files_name_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no.pem");
        assert_eq!(
            read_certs("-tls-ca", &missing).unwrap_err().to_string(),
            format!(
                "-tls-ca {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert_eq!(
            read_certs("-tls-cert", &empty).unwrap_err().to_string(),
            format!("-tls-cert {}: no PEM certificate in it", empty.display())
        );
    }
}
