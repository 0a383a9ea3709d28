//! `webhook`: an HTTP `PUT` of a small JSON document to the `-web-hook` URL for
//! each lifecycle event, signed when `-web-hook-secret` is given, twice: the
//! Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 of HMAC-SHA256(key, "id.timestamp.body")>`),
//! which that specification's libraries verify as they are and which carry
//! the time of sending against replays; and psdock's own
//! `X-Psdock-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`, kept for
//! the receivers written before them. http or
//! https; https verifies the server's certificate against the system's roots
//! and those of `-tls-ca`. Redirects are not followed: a hook that
//! moved is an error to fix, not a reason to send the signed body elsewhere.
//! The only notifier, so picked whenever `-web-hook` is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use ring::hmac;
use serde::Serialize;

use crate::plugin::{
    always_usable, Attempt, Delivery, Descriptor, Event, Exit, LocalFuture, Notifier, NotifySpec,
    PluginError,
};
use crate::tls_trust::{self, Asked};

struct Webhook;

inventory::submit! {
    Descriptor::<dyn Notifier> {
        name: "webhook",
        feature: "notify-webhook",
        priority: 100,
        summary: "HTTP PUT of a JSON body to -web-hook (http or https)",
        probe: always_usable,
        build: Some(|_| Box::new(Webhook)),
    }
}

pub const SIGNATURE_HEADER: &str = "x-psdock-signature";

/// The Standard Webhooks secret prefix: what follows it is the key, in base64.
const WHSEC: &str = "whsec_";

/// Standard base64, with or without its padding: the specification's own
/// libraries take both forms of a `whsec_` secret.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, thiserror::Error)]
enum WebhookError {
    #[error("-web-hook {url}: {why}")]
    Url { url: String, why: String },
    #[error("{0}")]
    Tls(String),
    #[error("-web-hook: cannot set up the HTTP client: {}", chain(.0))]
    Client(reqwest::Error),
    // The secret itself is never echoed: the message may land in a log.
    #[error("-web-hook-secret {WHSEC}...: {0}")]
    Secret(String),
    #[error(transparent)]
    Trust(#[from] crate::tls_trust::TrustError),
}

/// The two keys one `-web-hook-secret` gives.
struct Keys {
    /// `X-Psdock-Signature`'s: the secret's bytes as given, as always.
    psdock: hmac::Key,
    /// `webhook-signature`'s: see [`standard_key`].
    standard: hmac::Key,
}

struct Hook {
    client: reqwest::Client,
    url: reqwest::Url,
    keys: Option<Keys>,
    ca: Option<PathBuf>,
}

impl Notifier for Webhook {
    fn open(&self, spec: &NotifySpec) -> Result<Box<dyn Delivery>, PluginError> {
        let url = check_url(&spec.url)?;
        // reqwest is built without a crypto provider of its own: ring, which
        // rustls also uses for stdio, so that one is compiled in, not two.
        // reqwest sets up its TLS even for http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("psdock/", env!("CARGO_PKG_VERSION")));
        if url.scheme() == "https" || spec.tls_ca.is_some() {
            builder = builder.tls_backend_preconfigured(tls_config(spec.tls_ca.as_deref())?);
        }
        let client = builder.build().map_err(WebhookError::Client)?;
        let keys = match &spec.secret {
            Some(secret) => Some(Keys {
                psdock: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
                standard: standard_key(secret)?,
            }),
            None => None,
        };
        let ca = spec.tls_ca.clone();
        Ok(Box::new(Hook {
            client,
            url,
            keys,
            ca,
        }))
    }
}

fn check_url(text: &str) -> Result<reqwest::Url, WebhookError> {
    let err = |why: String| WebhookError::Url {
        url: text.to_owned(),
        why,
    };
    let url = reqwest::Url::parse(text).map_err(|e| err(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err(format!(
            "scheme `{}` is not supported (use http or https)",
            url.scheme()
        )));
    }
    // The URL standard reads `http:///x` and `http:x` as `http://x/`: a
    // typo would send the events to a host named by the path.
    let authority = text
        .split_once(':')
        .and_then(|(_, rest)| rest.strip_prefix("//"))
        .and_then(|rest| rest.split(['/', '\\', '?', '#']).next());
    if url.host_str().is_none_or(str::is_empty) || authority.is_none_or(str::is_empty) {
        return Err(err("no host (expected http[s]://HOST[:PORT]/PATH)".into()));
    }
    Ok(url)
}

/// rustls with ring (so that one provider is compiled in, not two) and
/// psdock's own verifier, shared with `tls://`: it pins a self-signed
/// `-tls-ca` certificate, and its refusals are explained the same way.
fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = tls_trust::verifier(ca, provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(format!("-web-hook: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// A certificate's refusal, explained, if that is why `e` failed.
fn certificate_refused(e: &reqwest::Error, hook: &Hook) -> Option<String> {
    let asked = Asked {
        host: hook.url.host_str().unwrap_or_default(),
        ca: hook.ca.as_ref(),
        cert: None,
    };
    tls_trust::explain(tls_trust::find(e)?, &asked)
}

impl Delivery for Hook {
    fn attempt<'a>(&'a self, event: &'a Event) -> LocalFuture<'a, Attempt> {
        let body = body(event);
        let mut request = self
            .client
            .put(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(keys) = &self.keys {
            // Stamped at each try: a retry is a new sending of the same
            // message (same id), and the receiver judges its freshness.
            let id = message_id(event);
            let timestamp = unix_seconds(SystemTime::now());
            let standard = standard_signature(&keys.standard, &id, timestamp, &body);
            request = request
                .header(SIGNATURE_HEADER, signature(&keys.psdock, &body))
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", standard);
        }
        let request = request.body(body);
        Box::pin(async move {
            match request.send().await {
                // Trying again would not change the certificate.
                Err(e) => match certificate_refused(&e, self) {
                    Some(why) => Attempt::Refused(why.into()),
                    None => Attempt::Failed(chain(&e.without_url()).into()),
                },
                Ok(r) if r.status().is_success() => Attempt::Delivered,
                Ok(r) if r.status().is_server_error() => {
                    Attempt::Failed(format!("HTTP {}", r.status()).into())
                }
                Ok(r) => Attempt::Refused(format!("HTTP {}", r.status()).into()),
            }
        })
    }
}

/// `{"ps":{"status":...}}`: the original's document; the fields after
/// `status` were added without moving it, so that its consumers keep working.
#[derive(Serialize)]
struct Body<'a> {
    ps: Ps<'a>,
}

#[derive(Serialize)]
struct Ps<'a> {
    status: &'static str,
    id: &'a str,
    seq: u32,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    /// With a health check: `starting`, `healthy` or `unhealthy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_kills: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restarts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_restart: Option<bool>,
}

fn body(event: &Event) -> Vec<u8> {
    let (exit_code, signal) = match event.state {
        crate::plugin::State::Crashed(Exit::Code(code)) => (Some(code), None),
        crate::plugin::State::Crashed(Exit::Signal(sig)) => (None, Some(crate::signals::name(sig))),
        _ => (None, None),
    };
    let body = Body {
        ps: Ps {
            status: event.state.as_str(),
            id: &event.id,
            seq: event.seq,
            time: humantime::format_rfc3339_millis(event.time).to_string(),
            exit_code,
            signal,
            health: event.health.map(|h| h.as_str()),
            oom_kills: match event.state {
                crate::plugin::State::Oom(n) => Some(n),
                _ => None,
            },
            restarts: event.restarts,
            will_restart: event.will_restart,
        },
    };
    serde_json::to_vec(&body).expect("plain strings and numbers serialize")
}

fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The Standard Webhooks key of `secret`: a `whsec_` secret is the
/// specification's form, the key in base64 after the prefix; any other secret
/// is a key as it is, its bytes (the key of `X-Psdock-Signature`), so that a
/// secret that worked before signs both headers alike. The specification's
/// libraries take such a key as raw bytes (Python: `Webhook(secret.encode())`).
fn standard_key(secret: &str) -> Result<hmac::Key, WebhookError> {
    let Some(encoded) = secret.strip_prefix(WHSEC) else {
        return Ok(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
    };
    let key = SECRET_BASE64
        .decode(encoded)
        .map_err(|e| WebhookError::Secret(format!("what follows {WHSEC} is not base64: {e}")))?;
    if key.is_empty() {
        return Err(WebhookError::Secret(format!("no key after {WHSEC}")));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
}

/// `webhook-id`: one per event, the same at every try of it. The container id
/// alone repeats across runs (28 random bits), so the event's number and its
/// time, to the nanosecond, go with it.
fn message_id(event: &Event) -> String {
    let nanos = event
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{}_{nanos}", event.id, event.seq)
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `v1,<base64 of HMAC-SHA256(key, "id.timestamp.body")>`.
fn standard_signature(key: &hmac::Key, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    format!("v1,{}", general_purpose::STANDARD.encode(tag.as_ref()))
}

/// An error with its causes, `: `-separated: reqwest's own message alone
/// ("error sending request") does not say what went wrong.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::State;
    use std::time::{Duration, UNIX_EPOCH};

    fn event(seq: u32, state: State) -> Event {
        Event {
            id: "psdock_abc1234".into(),
            seq,
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            state,
            health: None,
            restarts: None,
            will_restart: None,
        }
    }

    #[test]
    fn with_a_restart_policy_bodies_count_the_restarts_and_crashed_says_what_follows() {
        let mut e = event(4, State::Starting);
        e.restarts = Some(1);
        assert!(String::from_utf8(body(&e))
            .unwrap()
            .ends_with(r#""time":"2023-11-14T22:13:20.123Z","restarts":1}}"#));
        e.state = State::Crashed(Exit::Code(3));
        e.will_restart = Some(true);
        assert!(String::from_utf8(body(&e))
            .unwrap()
            .ends_with(r#""exit_code":3,"restarts":1,"will_restart":true}}"#));
    }

    #[test]
    fn bodies_keep_status_first_and_add_the_exit() {
        assert_eq!(
            String::from_utf8(body(&event(1, State::Starting))).unwrap(),
            r#"{"ps":{"status":"starting","id":"psdock_abc1234","seq":1,"time":"2023-11-14T22:13:20.123Z"}}"#
        );
        let crashed = String::from_utf8(body(&event(3, State::Crashed(Exit::Code(0))))).unwrap();
        assert!(
            crashed.ends_with(r#""seq":3,"time":"2023-11-14T22:13:20.123Z","exit_code":0}}"#),
            "{crashed}"
        );
        let killed = String::from_utf8(body(&event(2, State::Crashed(Exit::Signal(9))))).unwrap();
        assert!(
            killed.contains(r#""status":"crashed""#) && killed.ends_with(r#""signal":"SIGKILL"}}"#),
            "{killed}"
        );
        assert!(!killed.contains("exit_code"));
    }

    #[test]
    fn health_comes_last_and_only_with_a_check() {
        let mut e = event(3, State::Health);
        e.health = Some(crate::health::Health::Unhealthy);
        let text = String::from_utf8(body(&e)).unwrap();
        assert!(
            text.starts_with(r#"{"ps":{"status":"health","#)
                && text.ends_with(r#""health":"unhealthy"}}"#),
            "{text}"
        );
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn standard_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks reference libraries.
        let key = standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Without its padding, as some services hand secrets out.
        let unpadded = standard_key("whsec_c2VjcmV0IQ").unwrap();
        let padded = standard_key("whsec_c2VjcmV0IQ==").unwrap();
        let raw = hmac::Key::new(hmac::HMAC_SHA256, b"secret!");
        for key in [unpadded, padded] {
            assert_eq!(
                hmac::sign(&key, b"x").as_ref(),
                hmac::sign(&raw, b"x").as_ref()
            );
        }
    }

    #[test]
    fn a_secret_without_whsec_is_its_own_bytes() {
        // As Python's standardwebhooks signs with Webhook(b"s3cr3t, with spaces").
        let key = standard_key("s3cr3t, with spaces").unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "psdock_abc1234_1_1700000000123000000",
                1700000000,
                b"{\"ps\":{}}"
            ),
            "v1,c04t1wK2NnAGwMWQgA0BZlIXrkGCfgDP5CcSlMkRvzw="
        );
    }

    #[test]
    fn a_bad_whsec_secret_is_refused_without_echoing_it() {
        for (secret, why) in [
            (
                "whsec_not*base64",
                "what follows whsec_ is not base64: Invalid symbol 42, offset 3.",
            ),
            ("whsec_", "no key after whsec_"),
        ] {
            let Err(e) = standard_key(secret) else {
                panic!("{secret} accepted");
            };
            assert_eq!(e.to_string(), format!("-web-hook-secret whsec_...: {why}"));
        }
    }

    #[test]
    fn message_ids_differ_per_event_and_stay_for_its_retries() {
        let first = event(1, State::Starting);
        assert_eq!(message_id(&first), "psdock_abc1234_1_1700000000123000000");
        assert_eq!(message_id(&first), message_id(&first.clone()));
        assert_ne!(message_id(&first), message_id(&event(2, State::Running)));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("https://example.com").is_ok());
        for (bad, why) in [
            (
                "ftp://example.com/x",
                "scheme `ftp` is not supported (use http or https)",
            ),
            ("example.com/hook", "not a URL: relative URL without a base"),
            ("http://", "not a URL: empty host"),
            ("http:///x", "no host (expected http[s]://HOST[:PORT]/PATH)"),
            (
                "https:host/x",
                "no host (expected http[s]://HOST[:PORT]/PATH)",
            ),
            (
                "file:///tmp/x",
                "scheme `file` is not supported (use http or https)",
            ),
        ] {
            assert_eq!(
                check_url(bad).unwrap_err().to_string(),
                format!("-web-hook {bad}: {why}")
            );
        }
    }
}
