//! Health checks: -health-cmd and an image's Healthcheck, run inside real
//! containers; the state in psdock-ls and on the web hook; a check that hangs;
//! the start period; bad values. The checks read a file the test controls
//! through a bind mount, so the test decides when they pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::hook::{Hook, Request};
use crate::records::{self, ls_json, wait_for};
use crate::util::*;

/// A directory bound at /ctl in the container: `ok` in it makes the check pass.
struct Ctl {
    dir: PathBuf,
}

impl Ctl {
    fn new(sb: &Sandbox) -> Ctl {
        let dir = sb.path("ctl");
        std::fs::create_dir(&dir).unwrap();
        Ctl { dir }
    }
    fn bind(&self) -> String {
        format!("{}:/ctl", self.dir.display())
    }
    fn pass(&self, yes: bool) {
        let ok = self.dir.join("ok");
        if yes {
            std::fs::write(ok, "").unwrap();
        } else {
            std::fs::remove_file(ok).unwrap();
        }
    }
}

/// `psdock ... -health-cmd CMD -health-interval 50ms FLAGS... sleep 1000`,
/// with the check reading /ctl/ok.
fn psdock(sb: &Sandbox, ctl: &Ctl, flags: &[&str]) -> Command {
    let mut cmd = sb.psdock();
    cmd.args(["-bind-mount", &ctl.bind()])
        .args(["-health-cmd", "echo checked; test -e /ctl/ok"])
        .args(["-health-interval", "50ms"])
        .args(flags)
        .args(["sleep", "1000"]);
    cmd
}

/// The `health` object of the sandbox's one running container.
fn health(sb: &Sandbox) -> Value {
    ls_json(sb, false)
        .first()
        .map_or(Value::Null, |r| r["health"].clone())
}

fn wait_health(sb: &Sandbox, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, || Some(health(sb)).filter(&cond))
}

fn events(hook: &Hook) -> Vec<(u64, String, String)> {
    hook.requests()
        .iter()
        .map(|r: &Request| {
            let ps = r.ps();
            let health = ps["health"].as_str().unwrap_or("-").to_owned();
            (r.seq(), r.status(), health)
        })
        .collect()
}

fn ev(seq: u64, status: &str, health: &str) -> (u64, String, String) {
    (seq, status.into(), health.into())
}

#[test]
fn running_waits_for_the_first_healthy_and_the_start_period_forgives_failures() {
    let sb = Sandbox::new();
    let ctl = Ctl::new(&sb);
    let hook = Hook::ok();
    let url = hook.url();
    let flags = [
        "-health-start-period",
        "1h",
        "-health-retries",
        "1",
        "-web-hook",
        &url,
    ];
    let mut run = records::start(&sb, psdock(&sb, &ctl, &flags));
    // Checks run and fail: inside the start period they do not count, and
    // the command is not ready yet.
    let failed = wait_health(&sb, "a failed check", |h| h["last_check"]["exit_code"] == 1);
    assert_eq!(failed["status"], "starting", "{failed}");
    assert_eq!(failed["failing_streak"], 0, "{failed}");
    assert_eq!(failed["last_check"]["output"], "checked\n", "{failed}");
    assert_eq!(events(&hook), [ev(1, "starting", "-")]);
    ctl.pass(true);
    let running = hook.wait_for_status("running");
    assert_eq!(running.seq(), 2);
    assert_eq!(running.ps()["health"], "healthy");
    let now = health(&sb);
    assert_eq!(now["status"], "healthy", "{now}");
    assert_eq!(now["last_check"]["exit_code"], 0, "{now}");
    // A success ends the start period: the next failure counts (retries 1).
    ctl.pass(false);
    let unhealthy = hook.wait_for_status("health");
    assert_eq!(unhealthy.ps()["health"], "unhealthy");
    assert_eq!(run.stop(), 143);
    hook.wait_for(4);
    assert_eq!(
        events(&hook),
        [
            ev(1, "starting", "-"),
            ev(2, "running", "healthy"),
            ev(3, "health", "unhealthy"),
            ev(4, "crashed", "unhealthy"),
        ]
    );
    drop(run);
    sb.assert_clean();
}

#[test]
fn unhealthy_after_retries_failures_in_a_row_and_healthy_again() {
    let sb = Sandbox::new();
    let ctl = Ctl::new(&sb);
    ctl.pass(true);
    let hook = Hook::ok();
    let url = hook.url();
    // Slow enough for every state between two checks to be seen.
    let flags = [
        "-health-retries",
        "3",
        "-health-interval",
        "200ms",
        "-web-hook",
        &url,
    ];
    let mut run = records::start(&sb, psdock(&sb, &ctl, &flags));
    assert_eq!(hook.wait_for_status("running").ps()["health"], "healthy");
    let row = ls_json(&sb, false);
    assert_eq!(row[0]["health"]["status"], "healthy", "{row:?}");
    // The table shows it too.
    let table = stdout(&records::ls(&sb, &[]));
    assert!(table.lines().next().unwrap().contains("HEALTH"), "{table}");
    assert!(table.contains("  healthy  "), "{table}");
    ctl.pass(false);
    // Failures one by one: healthy still after one and two, unhealthy at three.
    let mut seen = Vec::new();
    let sick = wait_for("unhealthy", || {
        let h = health(&sb);
        let state = (
            h["status"].as_str().unwrap().to_owned(),
            h["failing_streak"].as_u64().unwrap(),
        );
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        Some(h).filter(|h| h["status"] == "unhealthy")
    });
    let healthy = |n| ("healthy".to_owned(), n);
    assert_eq!(seen[..3], [healthy(0), healthy(1), healthy(2)], "{seen:?}");
    assert_eq!(seen[3], ("unhealthy".to_owned(), 3), "{seen:?}");
    assert_eq!(sick["last_check"]["exit_code"], 1, "{sick}");
    assert_eq!(hook.wait_for_status("health").ps()["health"], "unhealthy");
    // Without a restart policy psdock only reports: the command runs on.
    assert_eq!(ls_json(&sb, false)[0]["status"], "running");
    ctl.pass(true);
    hook.wait_for(4);
    assert_eq!(run.stop(), 143);
    hook.wait_for(5);
    assert_eq!(
        events(&hook),
        [
            ev(1, "starting", "-"),
            ev(2, "running", "healthy"),
            ev(3, "health", "unhealthy"),
            ev(4, "health", "healthy"),
            ev(5, "crashed", "healthy"),
        ]
    );
    drop(run);
    sb.assert_clean();
}

#[test]
fn failures_count_once_the_start_period_is_over() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let mut cmd = sb.psdock();
    cmd.args(["-web-hook", &hook.url()])
        .args(["-health-cmd", "false", "-health-interval", "50ms"])
        .args(["-health-retries", "1", "-health-start-period", "700ms"])
        .args(["sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    let unhealthy = hook.wait_for_status("health");
    // psdock's own stamps: `starting` is stamped before the container exists.
    let time = |r: &Request| humantime::parse_rfc3339(r.ps()["time"].as_str().unwrap()).unwrap();
    let after = time(&unhealthy)
        .duration_since(time(&hook.requests()[0]))
        .unwrap();
    assert!(
        after >= std::time::Duration::from_millis(700),
        "unhealthy {after:?} after starting, within the start period"
    );
    assert_eq!(unhealthy.ps()["health"], "unhealthy");
    // Never healthy, so never ready.
    assert!(hook.requests().iter().all(|r| r.status() != "running"));
    assert_eq!(run.stop(), 143);
    drop(run);
    sb.assert_clean();
}

/// Command lines of the sandbox's live processes.
fn cmdlines(sb: &Sandbox) -> Vec<String> {
    sb.processes()
        .into_iter()
        .filter_map(|(pid, _)| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .collect()
}

#[test]
fn a_check_past_its_timeout_is_killed_with_all_it_started_and_fails() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    // The first check hangs, with one child in its process group and one
    // that left it; the next ones pass.
    cmd.args([
        "-health-cmd",
        "[ -e /once ] && exit; touch /once; echo begun; sleep 1001 & setsid sleep 1002 & sleep 1003",
    ])
    .args(["-health-interval", "50ms", "-health-timeout", "300ms"])
    .args(["-health-retries", "1"])
    .args(["sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    let hung = |sb: &Sandbox| -> Vec<String> {
        cmdlines(sb)
            .into_iter()
            .filter(|l| {
                ["1001", "1002", "1003"]
                    .iter()
                    .any(|n| *l == format!("sleep {n} "))
            })
            .collect()
    };
    wait_for("the hanging check's processes", || {
        (hung(&sb).len() == 3).then_some(())
    });
    let sick = wait_health(&sb, "unhealthy", |h| h["status"] == "unhealthy");
    assert_eq!(sick["last_check"]["exit_code"], -1, "{sick}");
    assert_eq!(sick["last_check"]["output"], "begun\n", "{sick}");
    let at = |k: &str| humantime::parse_rfc3339(sick["last_check"][k].as_str().unwrap()).unwrap();
    let took = at("end").duration_since(at("start")).unwrap();
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
    // All three were killed (SIGKILL takes its moment to land).
    wait_for("the hanging check's processes to be gone", || {
        hung(&sb).is_empty().then_some(())
    });
    wait_health(&sb, "healthy again", |h| h["status"] == "healthy");
    assert_eq!(run.stop(), 143);
    drop(run);
    sb.assert_clean();
}

/// The test layout's `plain` image with a docker Healthcheck in its config, as
/// the only image of a layout of its own.
fn image_with_healthcheck(sb: &Sandbox, healthcheck: Value) -> PathBuf {
    let dir = sb.path("oci");
    let st = Command::new("cp")
        .arg("-a")
        .arg(crate::oci::layout())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |digest: &Value| {
        dir.join("blobs/sha256")
            .join(&digest.as_str().unwrap()[7..])
    };
    let write = |v: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).unwrap();
        let hex: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join("blobs/sha256").join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut index = read(&dir.join("index.json"));
    let plain = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "plain")
        .unwrap()
        .clone();
    let mut manifest = read(&blob(&plain["digest"]));
    let mut config = read(&blob(&manifest["config"]["digest"]));
    config["config"]["Healthcheck"] = healthcheck;
    let (digest, size) = write(&config);
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = write(&manifest);
    let mut entry = plain;
    entry["digest"] = digest.into();
    entry["size"] = size.into();
    index["manifests"] = Value::Array(vec![entry]);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    dir
}

#[test]
fn the_image_healthcheck_is_used_and_health_cmd_none_turns_it_off() {
    let sb = Sandbox::new();
    let ctl = Ctl::new(&sb);
    let ms = 1_000_000u64;
    let image = image_with_healthcheck(
        &sb,
        serde_json::json!({
            "Test": ["CMD", "/bin/sh", "-c", "echo from-image >> /ctl/ran; echo image; exit 3"],
            "Interval": 50 * ms,
            "Timeout": 5000 * ms,
            "Retries": 2,
        }),
    );
    let mut cmd = sb.psdock_with(&image);
    cmd.args(["-bind-mount", &ctl.bind(), "sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    let sick = wait_health(&sb, "unhealthy", |h| h["status"] == "unhealthy");
    // The image's Retries, its exec form, and what it printed.
    assert_eq!(sick["failing_streak"], 2, "{sick}");
    assert_eq!(sick["last_check"]["exit_code"], 3, "{sick}");
    assert_eq!(sick["last_check"]["output"], "image\n", "{sick}");
    assert_eq!(run.stop(), 143);
    drop(run);
    sb.assert_clean();

    // -health-cmd none: no check, whatever the image says. The command runs
    // for what would be many of the image's intervals.
    std::fs::remove_file(ctl.dir.join("ran")).unwrap();
    let out = output(
        sb.psdock_with(&image)
            .args(["-bind-mount", &ctl.bind(), "-health-cmd", "none"])
            .args(["sh", "-c", "sleep 0.5; cat /ctl/ran 2>&1"]),
    );
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(!ctl.dir.join("ran").exists());
    // A flag overrides the image's field: one failure is enough.
    let mut cmd = sb.psdock_with(&image);
    cmd.args([
        "-bind-mount",
        &ctl.bind(),
        "-health-retries",
        "1",
        "sleep",
        "1000",
    ]);
    let mut run = records::start(&sb, cmd);
    let sick = wait_health(&sb, "unhealthy", |h| h["status"] == "unhealthy");
    assert_eq!(sick["failing_streak"], 1, "{sick}");
    assert_eq!(run.stop(), 143);
    drop(run);
    sb.assert_clean();
}

#[test]
fn a_command_the_check_cannot_find_fails_it_with_127() {
    let sb = Sandbox::new();
    let image = image_with_healthcheck(
        &sb,
        serde_json::json!({"Test": ["CMD", "no-such-check"], "Interval": 50_000_000u64, "Retries": 1}),
    );
    let mut cmd = sb.psdock_with(&image);
    cmd.args(["sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    let sick = wait_health(&sb, "unhealthy", |h| h["status"] == "unhealthy");
    assert_eq!(sick["last_check"]["exit_code"], 127, "{sick}");
    let output = sick["last_check"]["output"].as_str().unwrap();
    assert!(output.contains("no-such-check"), "{output}");
    assert_eq!(run.stop(), 143);
    drop(run);
    sb.assert_clean();
}

#[test]
fn bad_values_are_refused_before_anything_exists() {
    let case = |args: &[&str], names: &[&str]| {
        let sb = Sandbox::new();
        let out = output(sb.psdock().args(args).arg("true"));
        assert_psdock_error(&out, names);
        sb.assert_clean();
    };
    const DURATION: &str = "must be whole seconds or a number with a unit";
    for flag in [
        "-health-interval",
        "-health-timeout",
        "-health-start-period",
    ] {
        for bad in ["soon", "-1", "1.5"] {
            case(&[flag, bad], &[flag, bad, DURATION]);
        }
    }
    for flag in ["-health-interval", "-health-timeout"] {
        for bad in ["0", "500us"] {
            case(&[flag, bad], &[flag, bad, "must be at least 1ms"]);
        }
    }
    case(
        &["-health-retries", "0"],
        &["-health-retries", "0", "at least 1"],
    );
    case(&["-health-cmd", " "], &["-health-cmd", "must not be empty"]);
    case(
        &["-health-interval", "1s"],
        &["-health-interval", "needs a health check"],
    );
}

#[test]
fn a_web_hook_named_by_host_name_does_not_keep_checks_from_starting() {
    // `localhost` is looked up on a thread of the runtime's: a check due
    // meanwhile waits for it to go (a shared-memory child needs a
    // single-threaded psdock) instead of failing.
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let url = format!("http://localhost:{}/hook", hook.port);
    let mut cmd = sb.psdock();
    cmd.args(["-web-hook", &url])
        .args(["-health-cmd", "true", "-health-interval", "10ms"])
        .args(["-health-retries", "1", "sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    assert_eq!(hook.wait_for_status("running").ps()["health"], "healthy");
    // Checks go on passing while the hook's look-ups come and go.
    for _ in 0..3 {
        let before = health(&sb)["last_check"]["end"].clone();
        let now = wait_health(&sb, "another check", |h| h["last_check"]["end"] != before);
        assert_eq!(now["status"], "healthy", "{now}");
        assert_eq!(now["last_check"]["exit_code"], 0, "{now}");
    }
    assert_eq!(run.stop(), 143);
    let got = hook.wait_for(3);
    assert_eq!(got[2].status(), "crashed");
    // Nor did the end of the container, which kills a check under way,
    // count as a failure.
    assert!(got.iter().all(|r| r.status() != "health"), "{got:?}");
    drop(run);
    sb.assert_clean();
}

/// Whether psdock `pid` runs from a read-only view of its binary.
fn runs_sealed(pid: u32) -> bool {
    let st = nix::sys::statvfs::statvfs(format!("/proc/{pid}/exe").as_str()).unwrap();
    st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
}

#[test]
fn with_a_check_psdock_runs_from_a_sealed_binary_as_psdock_exec_does() {
    // A check enters a container where other processes run: were psdock's
    // binary the host's file, a check that executes /proc/self/exe (or a
    // `#!/proc/self/exe` script) would hand it to them (tests/integration/
    // hostile/binary.rs shows the attack on psdock-exec).
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-health-cmd", "true", "sleep", "1000"]);
    let mut run = records::start(&sb, cmd);
    assert!(runs_sealed(run.child.id()));
    assert_eq!(run.stop(), 143);
    drop(run);
    // Without one, nothing changes: no second exec at start-up.
    let run = records::start(&sb, {
        let mut cmd = sb.psdock();
        cmd.args(["sleep", "1000"]);
        cmd
    });
    assert!(!runs_sealed(run.child.id()));
    drop(run);
    sb.assert_clean();
}

#[test]
fn with_bind_port_running_waits_for_both_the_port_and_the_first_healthy() {
    let sb = Sandbox::new();
    let ctl = Ctl::new(&sb);
    ctl.pass(true);
    let hook = Hook::ok();
    let port = std::net::TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The command listens once the test says so.
    let script = format!("while [ ! -e /ctl/listen ]; do sleep 0.02; done; exec nc -l -p {port}");
    let mut cmd = sb.psdock();
    cmd.args(["-bind-mount", &ctl.bind(), "-web-hook", &hook.url()])
        .args(["-bind-port", &port.to_string()])
        .args(["-health-cmd", "test -e /ctl/ok", "-health-interval", "50ms"])
        .args(["sh", "-c", &script]);
    let run = Running::start(&mut cmd);
    // Healthy, but not listening: not ready; the change is a `health` event.
    let healthy = hook.wait_for_status("health");
    assert_eq!(
        (healthy.seq(), healthy.ps()["health"].as_str()),
        (2, Some("healthy"))
    );
    assert!(hook.requests().iter().all(|r| r.status() != "running"));
    std::fs::write(ctl.dir.join("listen"), "").unwrap();
    let running = hook.wait_for_status("running");
    assert_eq!(
        (running.seq(), running.ps()["health"].as_str()),
        (3, Some("healthy"))
    );
    // A connection that closes ends `nc -l`.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nobody listens on {port}"
        );
    }
    sb.ends(run, 0);
    assert_eq!(
        events(&hook),
        [
            ev(1, "starting", "-"),
            ev(2, "health", "healthy"),
            ev(3, "running", "healthy"),
            ev(4, "crashed", "healthy"),
        ]
    );
}

/// `(status, restarts, will_restart, health)` of every request so far.
fn attempts(hook: &Hook) -> Vec<(String, Value, Value, String)> {
    hook.requests()
        .iter()
        .map(|r| {
            let ps = r.ps();
            let health = ps["health"].as_str().unwrap_or("-").to_owned();
            (
                r.status(),
                ps["restarts"].clone(),
                ps["will_restart"].clone(),
                health,
            )
        })
        .collect()
}

#[test]
fn under_a_restart_policy_unhealthy_stops_the_command_and_a_fresh_attempt_follows() {
    let sb = Sandbox::new();
    let ctl = Ctl::new(&sb);
    let hook = Hook::ok();
    // Attempt N notes its number in its rootfs (a fresh one finds none from
    // the attempt before) and passes its check while /ctl/okN exists; stopped
    // (SIGTERM), it exits 10+N.
    let script = "test -e /n && echo dirty >> /ctl/count; echo run >> /ctl/count; \
                  n=$(grep -c run /ctl/count); echo $n > /n; \
                  trap 'exit $((n + 10))' TERM; sleep 1000 & wait";
    for n in [1, 2] {
        std::fs::write(ctl.dir.join(format!("ok{n}")), "").unwrap();
    }
    let mut cmd = sb.psdock();
    cmd.args(["-bind-mount", &ctl.bind(), "-web-hook", &hook.url()])
        .args(["-restart", "on-failure:1", "-restart-delay", "1ms"])
        .args(["-health-cmd", "test -e /ctl/ok$(cat /n)"])
        .args(["-health-interval", "100ms", "-health-retries", "2"])
        .args(sh(script));
    let run = Running::start(&mut cmd);
    let first = hook.wait_for_status("running");
    assert_eq!(first.ps()["health"], "healthy");
    std::fs::remove_file(ctl.dir.join("ok1")).unwrap();
    // The second attempt is running (healthy) too: its own check passes.
    let second = wait_for("the second attempt to run", || {
        let got = hook.requests();
        let running: Vec<_> = got
            .into_iter()
            .filter(|r| r.status() == "running")
            .collect();
        (running.len() == 2).then(|| running[1].clone())
    });
    assert_eq!(second.ps()["restarts"], 1);
    std::fs::remove_file(ctl.dir.join("ok2")).unwrap();
    // Unhealthy again, and the cap is reached: psdock ends with that attempt.
    let out = run.finish();
    assert_eq!((code(&out), stderr(&out)), (12, String::new()));
    let count = std::fs::read_to_string(ctl.dir.join("count")).unwrap();
    assert_eq!(count, "run\nrun\n", "each attempt in a fresh rootfs");
    let n = |v: u64| Value::from(v);
    let s = |t: &str| t.to_owned();
    let attempt = |r: u64, end: bool| {
        [
            (s("starting"), n(r), Value::Null, s("-")),
            (s("running"), n(r), Value::Null, s("healthy")),
            (s("health"), n(r), Value::Null, s("unhealthy")),
            (s("crashed"), n(r), Value::Bool(end), s("unhealthy")),
        ]
    };
    let want: Vec<_> = [attempt(0, true), attempt(1, false)].concat();
    assert_eq!(attempts(&hook), want);
    sb.assert_clean();
}

#[test]
fn between_attempts_the_entry_has_no_health() {
    let sb = Sandbox::new();
    let mut run = sb.spawn([
        "-restart",
        "always",
        "-restart-delay",
        "1h",
        "-health-cmd",
        "true",
        "-health-interval",
        "50ms",
        "sh",
        "-c",
        "echo ready; read x; exit 3",
    ]);
    assert_eq!(run.line(), "ready");
    wait_health(&sb, "the first attempt to be healthy", |h| {
        h["status"] == "healthy"
    });
    run.send_line("end");
    let row = wait_for("the entry to read restarting", || {
        ls_json(&sb, true)
            .into_iter()
            .find(|r| r["status"] == "restarting")
    });
    // The last attempt's `healthy` is not the container's between attempts.
    assert_eq!(row["health"], Value::Null, "{row}");
    run.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code(&run.finish()), 3);
    sb.assert_clean();
}
