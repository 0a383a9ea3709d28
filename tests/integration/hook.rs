//! A real HTTP server on 127.0.0.1 for web hook tests, plain or https with a
//! CA of its own: records every request (method, path, headers, body, arrival
//! order and time) and answers from a script: a status per request, or no
//! answer at all.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the server answers the request with this arrival index (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Read the request, never answer, keep the connection open.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `"ps"` object of the body.
    pub fn ps(&self) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body));
        v["ps"].clone()
    }

    pub fn status(&self) -> String {
        self.ps()["status"].as_str().unwrap_or_default().to_owned()
    }

    pub fn seq(&self) -> u64 {
        self.ps()["seq"].as_u64().unwrap_or_default()
    }
}

type Log = Arc<(Mutex<Vec<Request>>, Condvar)>;

pub struct Hook {
    pub port: u16,
    scheme: &'static str,
    log: Log,
}

/// A CA and a certificate it signed for 127.0.0.1 and localhost.
pub struct Tls {
    pub ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl Tls {
    pub fn new() -> Tls {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Tls::serving(ca.pem(), &leaf, &key)
    }

    /// What `openssl req -x509` makes: a self-signed certificate for
    /// 127.0.0.1 that marks itself a CA (basicConstraints CA:TRUE), as
    /// `ca_pem`, and the server presenting it.
    pub fn self_signed() -> Tls {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Tls::serving(cert.pem(), &cert, &key)
    }

    fn serving(ca_pem: String, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap();
        Tls {
            ca_pem,
            config: Arc::new(config),
        }
    }
}

impl Hook {
    /// Answers 200 to everything.
    pub fn ok() -> Hook {
        Hook::start(|_| Reply::Status(200))
    }

    pub fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Hook {
        Hook::serve(None, reply)
    }

    /// https with `tls`'s certificate.
    pub fn start_tls(tls: &Tls, reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Hook {
        Hook::serve(Some(tls.config.clone()), reply)
    }

    fn serve(
        tls: Option<Arc<rustls::ServerConfig>>,
        reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
    ) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Log = Arc::default();
        let reply = Arc::new(reply);
        let l = log.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Lives until the test binary ends; each connection gets a thread so a
        // hanging answer holds up nobody else.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (log, reply, tls) = (l.clone(), reply.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(conn, &log, &*reply),
                    Some(config) => {
                        let server = rustls::ServerConnection::new(config).unwrap();
                        serve(rustls::StreamOwned::new(server, conn), &log, &*reply)
                    }
                });
            }
        });
        Hook { port, scheme, log }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/hook", self.scheme, self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.0.lock().unwrap().clone()
    }

    /// The requests once there are at least `n` of them; panics after 20 s.
    pub fn wait_for(&self, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (lock, cvar) = &*self.log;
        let mut got = lock.lock().unwrap();
        while got.len() < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("expected {n} requests, got {:#?}", *got));
            got = cvar.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }

    /// Waits for the first request whose status is `status`.
    pub fn wait_for_status(&self, status: &str) -> Request {
        let mut n = 1;
        loop {
            let got = self.wait_for(n);
            if let Some(r) = got.iter().find(|r| r.status() == status) {
                return r.clone();
            }
            n = got.len() + 1;
        }
    }
}

fn serve(conn: impl Read + Write, log: &Log, reply: &(dyn Fn(usize) -> Reply + Send + Sync)) {
    let mut reader = BufReader::new(conn);
    // Keep-alive: several requests may come over one connection.
    while let Some(request) = read_request(&mut reader) {
        let index = {
            let (lock, cvar) = &**log;
            let mut got = lock.lock().unwrap();
            got.push(request);
            cvar.notify_all();
            got.len() - 1
        };
        match reply(index) {
            Reply::Status(code) => {
                let head = format!("HTTP/1.1 {code} Scripted\r\ncontent-length: 0\r\n\r\n");
                let out = reader.get_mut();
                if out
                    .write_all(head.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
            Reply::Hang => {
                // Until the client gives up and closes.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
        }
    }
}

/// `None` at the end of the stream, or when it breaks (a TLS handshake the
/// client gave up on).
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
        at,
    })
}
