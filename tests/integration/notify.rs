//! -web-hook: what arrives, in which order, signed how, and that a hook that
//! fails, refuses or hangs never holds up the command or changes the exit code.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::hook::{Hook, Reply, Request, Tls};
use crate::util::*;

fn statuses(requests: &[Request]) -> Vec<(u64, String)> {
    requests.iter().map(|r| (r.seq(), r.status())).collect()
}

fn seqs_and(statuses: &[&str]) -> Vec<(u64, String)> {
    statuses
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u64 + 1, s.to_string()))
        .collect()
}

/// psdock said on stderr what went wrong with the hook.
fn assert_warned(out: &std::process::Output, text: &str) {
    let e = stderr(out);
    assert!(e.contains("psdock: -web-hook: ") && e.contains(text), "{e}");
}

/// `2026-01-02T03:04:05.678Z`
fn is_rfc3339_utc_millis(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn starting_running_crashed_arrive_in_order_with_id_seq_time_and_exit_code() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let out = sb.run(["-web-hook", &hook.url(), "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    assert_eq!(stderr(&out), "");
    let got = hook.requests();
    assert_eq!(
        statuses(&got),
        seqs_and(&["starting", "running", "crashed"])
    );
    let id = got[0].ps()["id"].as_str().unwrap().to_owned();
    let hex = id.strip_prefix("psdock_").expect("id is psdock_<hex>");
    assert!(
        hex.len() == 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    for r in &got {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/hook"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-psdock-signature"), None);
        let ps = r.ps();
        assert_eq!(ps["id"], id.as_str());
        assert!(is_rfc3339_utc_millis(ps["time"].as_str().unwrap()), "{ps}");
    }
    let times: Vec<String> = got.iter().map(|r| r.ps()["time"].to_string()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(got[2].ps()["exit_code"], 3);
    assert!(got[2].ps().get("signal").is_none());
    assert!(got[0].ps().get("exit_code").is_none() && got[1].ps().get("exit_code").is_none());
    sb.assert_clean();
}

#[test]
fn a_command_killed_by_a_signal_is_crashed_with_the_signal_name() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let child = sb
        .psdock()
        .args(["-web-hook", &hook.url(), "sleep", "600"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hook.wait_for_status("running");
    // sleep does not catch SIGTERM: as PID 1 it would never see it, so psdock
    // kills it with SIGKILL.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 143);
    let got = hook.wait_for(3);
    assert_eq!(
        statuses(&got),
        seqs_and(&["starting", "running", "crashed"])
    );
    assert_eq!(got[2].ps()["signal"], "SIGKILL");
    assert!(got[2].ps().get("exit_code").is_none());
    sb.assert_clean();
}

#[test]
fn a_command_that_cannot_start_gets_starting_then_crashed_with_psdocks_code() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let out = sb.run(["-web-hook", &hook.url(), "no-such-command"]);
    assert_eq!(code(&out), 127);
    let got = hook.requests();
    assert_eq!(statuses(&got), seqs_and(&["starting", "crashed"]));
    assert_eq!(got[1].ps()["exit_code"], 127);
    sb.assert_clean();
}

/// `X-Psdock-Signature: sha256=<hex>` is the HMAC-SHA256 of `r`'s body with `key`.
fn psdock_signature_verifies(r: &Request, key: &[u8]) -> bool {
    let header = r.header("x-psdock-signature").expect("signed");
    let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&key, &r.body, &tag).is_ok()
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body_with_the_secret() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let secret = "s3cr3t, with spaces";
    let out = sb.run(["-web-hook", &hook.url(), "-web-hook-secret", secret, "true"]);
    assert_eq!(code(&out), 0);
    let got = hook.requests();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert!(psdock_signature_verifies(r, secret.as_bytes()));
        assert!(!psdock_signature_verifies(r, b"another secret"));
    }
    sb.assert_clean();
}

#[test]
fn server_errors_are_retried_until_the_hook_answers() {
    let sb = Sandbox::new();
    let hook = Hook::start(|i| Reply::Status(if i < 2 { 500 } else { 200 }));
    let out = sb.run(["-web-hook", &hook.url(), "sh", "-c", "exit 9"]);
    assert_eq!(code(&out), 9);
    let got = hook.requests();
    let seqs: Vec<u64> = got.iter().map(Request::seq).collect();
    assert_eq!(seqs, [1, 1, 1, 2, 3], "{:?}", statuses(&got));
    // A retry sends the same event again, not a new one.
    assert_eq!(got[0].body, got[2].body);
    assert_eq!(stderr(&out), "");
    sb.assert_clean();
}

#[test]
fn client_errors_are_not_retried_and_do_not_change_the_exit_code() {
    let sb = Sandbox::new();
    let hook = Hook::start(|_| Reply::Status(404));
    let out = sb.run(["-web-hook", &hook.url(), "sh", "-c", "exit 2"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        statuses(&hook.requests()),
        seqs_and(&["starting", "running", "crashed"])
    );
    assert_warned(&out, "psdock: -web-hook: \"starting\" refused: HTTP 404");
    sb.assert_clean();
}

#[test]
fn a_hook_that_is_down_does_not_change_the_exit_code() {
    let sb = Sandbox::new();
    // Bound, then closed: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = sb.run([
        "-web-hook",
        &url,
        "-web-hook-timeout",
        "1",
        "sh",
        "-c",
        "echo ran; exit 4",
    ]);
    assert_eq!(code(&out), 4);
    assert_eq!(stdout(&out), "ran\n");
    assert_warned(&out, "psdock: -web-hook:");
    sb.assert_clean();
}

#[test]
fn a_hanging_hook_neither_delays_the_command_nor_changes_the_exit_code() {
    let sb = Sandbox::new();
    let hook = Hook::start(|_| Reply::Hang);
    let timeout = 4;
    let start = Instant::now();
    let mut child = sb
        .psdock()
        .args([
            "-web-hook",
            &hook.url(),
            "-web-hook-timeout",
            &timeout.to_string(),
        ])
        .args(["sh", "-c", "echo started; read _; exit 6"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    // Had the command waited for the unanswered `starting`, it could not have
    // run before the request timed out.
    assert!(
        start.elapsed() < Duration::from_secs(timeout - 1),
        "{:?}",
        start.elapsed()
    );
    hook.wait_for_status("starting");
    drop(child.stdin.take()); // the command reads EOF and exits 6
    let ended = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 6);
    // psdock gave the outstanding deliveries one timeout at most.
    assert!(
        ended.elapsed() < Duration::from_secs(timeout + 3),
        "{:?}",
        ended.elapsed()
    );
    assert_warned(&out, "psdock: -web-hook:");
    sb.assert_clean();
}

/// `sh -c "exit 8"` with an https hook serving `tls`, and `-tls-ca` with
/// `tls`'s CA (or the certificate itself) when `trusted`.
fn https_run(sb: &Sandbox, tls: &Tls, trusted: bool) -> (std::process::Output, Hook) {
    let hook = Hook::start_tls(tls, |_| Reply::Status(200));
    let ca = sb.path("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let mut cmd = sb.psdock();
    cmd.args(["-web-hook", &hook.url(), "-web-hook-timeout", "1"]);
    if trusted {
        cmd.args(["-tls-ca", ca.to_str().unwrap()]);
    }
    let out = cmd.args(["sh", "-c", "exit 8"]).output().unwrap();
    assert_eq!(code(&out), 8);
    sb.assert_clean();
    (out, hook)
}

#[test]
fn https_is_verified_against_the_tls_ca_and_never_sent_unverified() {
    let sb = Sandbox::new();
    let tls = Tls::new();
    let (out, hook) = https_run(&sb, &tls, true);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        statuses(&hook.requests()),
        seqs_and(&["starting", "running", "crashed"])
    );

    // Without -tls-ca, the system's roots do not know the test CA: nothing may
    // be sent.
    let (out, untrusted) = https_run(&sb, &tls, false);
    assert!(untrusted.requests().is_empty());
    // One line per event, said at once: retrying would not change the
    // certificate.
    let why = "the certificate of 127.0.0.1 is not signed by a CA this system trusts; \
               give the CA's certificate (or the server's own) with -tls-ca FILE";
    assert_eq!(
        stderr(&out),
        ["starting", "running", "crashed"]
            .map(|s| format!("psdock: -web-hook: \"{s}\" refused: {why}\n"))
            .concat()
    );
}

#[test]
fn an_https_hook_with_a_self_signed_certificate_given_as_tls_ca_gets_the_events() {
    let sb = Sandbox::new();
    let (out, hook) = https_run(&sb, &Tls::self_signed(), true);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        statuses(&hook.requests()),
        seqs_and(&["starting", "running", "crashed"])
    );
}

#[test]
fn bad_web_hook_flags_are_exit_125_naming_flag_and_value_and_leave_nothing() {
    let sb = Sandbox::new();
    for (args, message) in [
        (
            vec!["-web-hook", "ftp://127.0.0.1/x"],
            "psdock: -web-hook ftp://127.0.0.1/x: scheme `ftp` is not supported (use http or https)",
        ),
        (
            vec!["-web-hook", "127.0.0.1:80"],
            "psdock: -web-hook 127.0.0.1:80: not a URL: relative URL without a base",
        ),
        (
            vec!["-web-hook", "http://"],
            "psdock: -web-hook http://: not a URL: empty host",
        ),
        (
            vec!["-web-hook", "http:///x"],
            "psdock: -web-hook http:///x: no host (expected http[s]://HOST[:PORT]/PATH)",
        ),
        (
            vec!["-web-hook-secret", "x"],
            "psdock: -web-hook-secret needs -web-hook",
        ),
        (
            vec!["-web-hook", "http://127.0.0.1:1/", "-tls-ca", "/no/such/ca.pem"],
            "psdock: -tls-ca /no/such/ca.pem: No such file or directory (os error 2)",
        ),
    ] {
        let out = sb.run(args.iter().copied().chain(["true"]));
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("{message}\n"), "{args:?}");
        sb.assert_clean();
    }
    let out = sb.run([
        "-web-hook-timeout",
        "0",
        "-web-hook",
        "http://127.0.0.1:1/",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock: -web-hook-timeout '0': must be a whole number of seconds, at least 1\n"
    );
    sb.assert_clean();
}

/// The receiver of `standard_webhooks.py`, started for `secret` and `count`
/// requests, and its port.
fn standard_webhooks_receiver(secret: &str, count: usize) -> (Running, u16) {
    let check = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .expect("python3 runs");
    assert!(
        check.status.success(),
        "Python's standardwebhooks is missing: run scripts/install-test-deps.sh ({})",
        String::from_utf8_lossy(&check.stderr)
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/standard_webhooks.py"
    );
    let mut receiver = Running::start(std::process::Command::new("python3").args([
        script,
        secret,
        &count.to_string(),
    ]));
    let first = receiver.line();
    let port = first.strip_prefix("port ").and_then(|p| p.parse().ok());
    (receiver, port.unwrap_or_else(|| panic!("{first:?}")))
}

#[test]
fn standard_webhooks_python_library_accepts_the_requests_and_rejects_replays() {
    // A secret in the specification's form, and one written for
    // X-Psdock-Signature (its bytes are the key of both).
    for secret in [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "s3cr3t, with spaces",
    ] {
        let sb = Sandbox::new();
        let (mut receiver, port) = standard_webhooks_receiver(secret, 3);
        let url = format!("http://127.0.0.1:{port}/hook");
        let out = sb.run(["-web-hook", &url, "-web-hook-secret", secret, "true"]);
        assert_eq!(code(&out), 0);
        // A rejection is a 401, which psdock would report.
        assert_eq!(stderr(&out), "", "{secret}");
        let got: Vec<serde_json::Value> = (0..3)
            .map(|_| serde_json::from_str(&receiver.line()).unwrap())
            .collect();
        let mut ids = Vec::new();
        for (r, status) in got.iter().zip(["starting", "running", "crashed"]) {
            assert_eq!(
                (r["verdict"].as_str(), r["status"].as_str()),
                (Some("accepted"), Some(status)),
                "{secret}: {r}"
            );
            ids.push(r["id"].as_str().unwrap().to_owned());
            // Sent now, in unix seconds.
            let sent: u64 = r["timestamp"].as_str().unwrap().parse().unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(sent <= now && now - sent < 30, "{sent} vs {now}");
            assert!(r["x-psdock-signature"]
                .as_str()
                .unwrap()
                .starts_with("sha256="));
        }
        ids.dedup();
        assert_eq!(ids.len(), 3, "one id per event: {ids:?}");
        let replays: serde_json::Value = serde_json::from_str(&receiver.line()).unwrap();
        assert_eq!(
            replays,
            serde_json::json!({
                "replayed_later": "rejected: Message timestamp too old",
                "restamped": "rejected: No matching signature found",
                "tampered": "rejected: No matching signature found",
            }),
            "{secret}"
        );
        assert_eq!(code(&receiver.finish()), 0);
        sb.assert_clean();
    }
}

#[test]
fn a_retried_event_keeps_its_webhook_id_and_x_psdock_signature_stays_as_it_was() {
    let sb = Sandbox::new();
    let hook = Hook::start(|i| Reply::Status(if i < 2 { 500 } else { 200 }));
    let secret = "whsec_c2VjcmV0IQ==";
    let out = sb.run(["-web-hook", &hook.url(), "-web-hook-secret", secret, "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = hook.requests();
    assert_eq!(
        got.iter().map(Request::seq).collect::<Vec<_>>(),
        [1, 1, 1, 2, 3]
    );
    let id = |r: &Request| r.header("webhook-id").expect("webhook-id").to_owned();
    assert!(got[..3].iter().all(|r| id(r) == id(&got[0])));
    assert!(id(&got[0]) != id(&got[3]) && id(&got[3]) != id(&got[4]));
    // X-Psdock-Signature: the whole secret as given is its key, as before.
    for r in &got {
        assert!(psdock_signature_verifies(r, secret.as_bytes()));
        assert!(r.header("webhook-signature").unwrap().starts_with("v1,"));
    }
    sb.assert_clean();
}

#[test]
fn without_a_secret_no_signature_headers_are_sent() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let out = sb.run(["-web-hook", &hook.url(), "true"]);
    assert_eq!(code(&out), 0);
    for r in hook.requests() {
        for h in [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-psdock-signature",
        ] {
            assert_eq!(r.header(h), None, "{h}");
        }
    }
    sb.assert_clean();
}

#[test]
fn a_whsec_secret_that_is_not_base64_is_exit_125_without_echoing_it() {
    let sb = Sandbox::new();
    let out = sb.run([
        "-web-hook",
        "http://127.0.0.1:1/",
        "-web-hook-secret",
        "whsec_s3cr3t!",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    let e = stderr(&out);
    assert!(
        e.starts_with("psdock: -web-hook-secret whsec_...: what follows whsec_ is not base64")
            && !e.contains("s3cr3t"),
        "{e}"
    );
    sb.assert_clean();
}
