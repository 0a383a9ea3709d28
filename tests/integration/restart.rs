//! -restart: how often an attempt follows, each in a fresh rootfs, the wait
//! between them, how psdock is stopped, and what the hook and psdock-ls see.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::hook::Hook;
use crate::records::{ls, ls_json};
use crate::stdio_net::{accept, listen, read_until};
use crate::util::*;

/// A host file the container appends to (`/count` inside): one line per event
/// of an attempt, across all of them.
fn counter(sb: &Sandbox) -> (PathBuf, String) {
    let path = sb.path("count");
    std::fs::write(&path, "").unwrap();
    let bind = format!("{}:/count", path.display());
    (path, bind)
}

fn lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `BEFORE... -restart POLICY -restart-delay 1ms AFTER...`: restarts that
/// do not wait long.
fn quickly<'a>(policy: &'a str, before: &[&'a str], after: &[&'a str]) -> Vec<&'a str> {
    let mut args = before.to_vec();
    args.extend(["-restart", policy, "-restart-delay", "1ms"]);
    args.extend(after);
    args
}

/// The number of `run` lines so far, as a shell sees it in the container.
const RUNS: &str = "n=$(grep -c run /count)";

#[test]
fn on_failure_with_a_cap_runs_n_plus_one_times_each_in_a_fresh_rootfs() {
    n_plus_one_fresh_runs("tmpfs");
}

#[test]
fn on_a_disk_upper_each_attempt_starts_fresh_too() {
    n_plus_one_fresh_runs("disk");
}

fn n_plus_one_fresh_runs(upper: &str) {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    // A file written into the rootfs by one attempt must not be seen by the
    // next; the exit code differs per attempt, so the last one is known.
    let script = format!(
        "test -e /left && echo dirty >> /count; touch /left; echo run >> /count; \
         {RUNS}; exit $((n + 10))"
    );
    let out = sb.run(quickly(
        "on-failure:2",
        &["-upper", upper, "-v", &bind],
        &["sh", "-c", &script],
    ));
    assert_eq!(lines(&count), ["run", "run", "run"], "{}", stderr(&out));
    assert_eq!(code(&out), 13, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    sb.assert_clean();
}

#[test]
fn a_clean_exit_under_on_failure_is_not_restarted() {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    let out = sb.run(quickly(
        "on-failure",
        &["-v", &bind],
        &["sh", "-c", "echo run >> /count"],
    ));
    assert_eq!((code(&out), lines(&count)), (0, vec!["run".to_owned()]));
    sb.assert_clean();
}

#[test]
fn without_restart_a_failure_ends_psdock_as_before() {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    let out = sb.run(["-v", &bind, "sh", "-c", "echo run >> /count; exit 1"]);
    assert_eq!((code(&out), lines(&count)), (1, vec!["run".to_owned()]));
    sb.assert_clean();
}

/// `-restart always` on a command that fails quickly twice, then notes its
/// number in its rootfs (`/attempt`), says `ready` and waits for SIGTERM,
/// which it turns into exit 7.
fn third_attempt_waits(sb: &Sandbox, bind: &str) -> Running {
    let script = format!(
        "echo run >> /count; {RUNS}; [ $n -lt 3 ] && exit 1; \
         echo $n > /attempt; trap 'exit 7' TERM; echo ready; sleep 1000 & wait"
    );
    sb.spawn(quickly("always", &["-v", bind], &["sh", "-c", &script]))
}

#[test]
fn always_is_stopped_by_sigterm_during_a_run_with_that_runs_code() {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    let mut run = third_attempt_waits(&sb, &bind);
    assert_eq!(run.line(), "ready");
    run.signal(Signal::SIGTERM);
    let out = run.finish();
    assert_eq!((code(&out), stderr(&out)), (7, String::new()));
    assert_eq!(lines(&count).len(), 3);
    sb.assert_clean();
}

#[test]
fn psdock_ls_shows_the_restarts_and_the_last_exit_while_it_runs() {
    let sb = Sandbox::new();
    let (_, bind) = counter(&sb);
    let mut run = third_attempt_waits(&sb, &bind);
    assert_eq!(run.line(), "ready");
    // The command may print before psdock has recorded its init.
    let rows = wait_for("the entry to read running", || {
        let rows = ls_json(&sb, false);
        (rows.len() == 1 && rows[0]["status"] == "running").then_some(rows)
    });
    let row = &rows[0];
    assert_eq!(
        (&row["status"], &row["restarts"], &row["last_exit"]),
        (&"running".into(), &2.into(), &1.into()),
        "{row}"
    );
    assert_eq!(row["init_pid"], run.init());
    let out = ls(&sb, &[]);
    let text = stdout(&out);
    let table: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let at = table[0].iter().position(|&h| h == "RESTARTS").expect(&text);
    assert_eq!(table[1][at], "2", "{text}");
    // psdock-exec reaches the attempt that runs now.
    let exec = std::process::Command::new(env!("CARGO_BIN_EXE_psdock-exec"))
        .env("PSDOCK_STATE_DIR", sb.state_dir())
        .args([row["id"].as_str().unwrap(), "cat", "/attempt"])
        .output()
        .unwrap();
    assert_eq!((code(&exec), stdout(&exec)), (0, "3\n".to_owned()));
    run.signal(Signal::SIGTERM);
    assert_eq!(code(&run.finish()), 7);
    sb.assert_clean();
}

#[test]
fn a_sigterm_during_the_wait_ends_it_at_once_with_the_last_attempts_code() {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    let run = sb.spawn([
        "-v",
        &bind,
        "-restart",
        "always",
        "-restart-delay",
        "1h",
        "sh",
        "-c",
        "echo run >> /count; exit 5",
    ]);
    // The entry says so once the first attempt has ended and the wait begun.
    let row = wait_for("the entry to read restarting", || {
        ls_json(&sb, false)
            .into_iter()
            .find(|r| r["status"] == "restarting")
    });
    assert_eq!(
        (&row["restarts"], &row["last_exit"]),
        (&0.into(), &5.into())
    );
    assert_eq!(row["init_pid"], serde_json::Value::Null);
    let sent = Instant::now();
    run.signal(Signal::SIGTERM);
    let out = run.finish();
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!((code(&out), stderr(&out)), (5, String::new()));
    assert_eq!(lines(&count), ["run"]);
    sb.assert_clean();
}

/// Seconds since boot, as each attempt saw them at its start and its end.
fn starts_and_ends(count: &PathBuf) -> (Vec<f64>, Vec<f64>) {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for line in lines(count) {
        let (what, t) = line.split_once(' ').unwrap();
        let t: f64 = t.parse().unwrap();
        match what {
            "start" => starts.push(t),
            "end" => ends.push(t),
            _ => panic!("{line}"),
        }
    }
    (starts, ends)
}

#[test]
fn the_wait_doubles_and_starts_over_after_a_run_of_restart_reset() {
    let sb = Sandbox::new();
    let (count, bind) = counter(&sb);
    // Attempts 1 to 3 fail at once, the 4th after 0.7 s (longer than
    // -restart-reset), the 5th at once and last. Expected waits: 300, 600,
    // 1200 ms, then 300 again where, without the reset, 2400 would come.
    let script = "read t _ < /proc/uptime; echo start $t >> /count; \
                  n=$(grep -c start /count); [ $n -eq 4 ] && sleep 0.7; \
                  read t _ < /proc/uptime; echo end $t >> /count; exit 1";
    let out = sb.run([
        "-v",
        &bind,
        "-restart",
        "on-failure:4",
        "-restart-delay",
        "300ms:10s",
        "-restart-reset",
        "500ms",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let (starts, ends) = starts_and_ends(&count);
    assert_eq!((starts.len(), ends.len()), (5, 5), "{:?}", lines(&count));
    let waits: Vec<f64> = (0..4).map(|i| starts[i + 1] - ends[i]).collect();
    // At least the expected wait (/proc/uptime counts in 10 ms steps): the
    // doubling. Far below the doubled wait after the long run: the reset.
    for (wait, least) in waits.iter().zip([0.3, 0.6, 1.2, 0.3]) {
        assert!(*wait >= least - 0.011, "{waits:?}");
    }
    assert!(waits[3] < 1.8, "did not start over: {waits:?}");
    sb.assert_clean();
}

#[test]
fn the_hook_gets_every_attempts_events_in_order_with_the_restarts() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let out = sb.run(quickly(
        "on-failure:1",
        &["-web-hook", &hook.url()],
        &["sh", "-c", "exit 4"],
    ));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let got = hook.requests();
    let seen: Vec<_> = got
        .iter()
        .map(|r| {
            let ps = r.ps();
            (
                r.seq(),
                r.status(),
                ps["restarts"].clone(),
                ps["will_restart"].clone(),
                ps["exit_code"].clone(),
            )
        })
        .collect();
    let null = serde_json::Value::Null;
    let n = |v: i64| serde_json::Value::from(v);
    let b = serde_json::Value::Bool;
    assert_eq!(
        seen,
        [
            (1, "starting".into(), n(0), null.clone(), null.clone()),
            (2, "running".into(), n(0), null.clone(), null.clone()),
            (3, "crashed".into(), n(0), b(true), n(4)),
            (4, "starting".into(), n(1), null.clone(), null.clone()),
            (5, "running".into(), n(1), null.clone(), null.clone()),
            (6, "crashed".into(), n(1), b(false), n(4)),
        ]
    );
    let id = &got[0].ps()["id"];
    assert!(got.iter().all(|r| r.ps()["id"] == *id), "one id: {id}");
    sb.assert_clean();
}

#[test]
fn without_restart_the_hook_bodies_have_no_restart_fields() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let out = sb.run(["-web-hook", &hook.url(), "sh", "-c", "exit 4"]);
    assert_eq!(code(&out), 4);
    for r in hook.requests() {
        let ps = r.ps();
        assert!(
            ps.get("restarts").is_none() && ps.get("will_restart").is_none(),
            "{ps}"
        );
    }
    sb.assert_clean();
}

#[test]
fn the_log_file_carries_on_across_attempts() {
    let sb = Sandbox::new();
    let log = sb.path("app.log");
    let out = sb.run(quickly(
        "on-failure:2",
        &["-stdio", &format!("file://{}", log.display())],
        &["sh", "-c", "echo out; echo err >&2; exit 1"],
    ));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "out\nerr\n".repeat(3)
    );
    sb.assert_clean();
}

#[test]
fn bad_restart_values_are_exit_125_naming_flag_and_value_and_leave_nothing() {
    let sb = Sandbox::new();
    for (flag, value) in [
        ("-restart", "sometimes"),
        ("-restart", "on-failure:0"),
        ("-restart", "on-failure:x"),
        ("-restart-delay", "2s:1s"),
        ("-restart-delay", "fast"),
        ("-restart-delay", "0"),
        ("-restart-reset", "0"),
        ("-restart-reset", "10 s"),
    ] {
        let out = sb.run([flag, value, "true"]);
        assert_psdock_error(&out, &[flag, value]);
        sb.assert_clean();
    }
}

#[test]
fn a_tcp_peer_stays_connected_across_attempts() {
    let sb = Sandbox::new();
    let (l, port) = listen();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut run = sb.spawn(quickly(
        "on-failure:2",
        &["-stdio", &url],
        &["sh", "-c", "echo hello; exit 1"],
    ));
    let mut peer = accept(&l);
    let mut all = String::new();
    peer.read_to_string(&mut all).unwrap();
    assert_eq!(all, "hello\r\n".repeat(3));
    l.set_nonblocking(true).unwrap();
    let again = l.accept().map(|_| ()).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::WouldBlock, "dialed again");
    drop(run.child.stdin.take());
    assert_eq!(code(&run.finish()), 1);
    sb.assert_clean();
}

#[test]
fn a_tcp_peer_that_went_away_is_dialed_again() {
    let sb = Sandbox::new();
    let (l, port) = listen();
    let url = format!("tcp://127.0.0.1:{port}");
    let run = sb.spawn(quickly(
        "always",
        &["-stdio", &url],
        &["sh", "-c", "echo ready; exec sleep 1000"],
    ));
    let mut first = accept(&l);
    read_until(&mut first, "ready");
    drop(first);
    let mut second = accept(&l);
    read_until(&mut second, "ready");
    run.signal(Signal::SIGTERM);
    let mut rest = String::new();
    second.read_to_string(&mut rest).unwrap();
    assert_eq!(code(&run.finish()), 128 + libc::SIGTERM);
    sb.assert_clean();
}

#[test]
fn with_bind_port_every_attempt_is_running_once_it_listens() {
    let sb = Sandbox::new();
    let hook = Hook::ok();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    // Each attempt listens until the test writes a line to psdock's stdin,
    // which the container inherits, attempt after attempt.
    let script = format!("nc -l -p {port} & read x; kill $!; exit 1");
    let mut run = sb.spawn(quickly(
        "on-failure:1",
        &["-web-hook", &hook.url(), "-bind-port", &port],
        &["sh", "-c", &script],
    ));
    for n in [2, 5] {
        let got = hook.wait_for(n);
        assert_eq!(got[n - 1].status(), "running", "{:?}", got.last());
        run.send_line("next");
    }
    assert_eq!(code(&run.finish()), 1);
    let got: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| (r.status(), r.ps()["restarts"].as_u64()))
        .collect();
    let seq = ["starting", "running", "crashed"];
    let want: Vec<_> = [0, 1]
        .into_iter()
        .flat_map(|n| seq.map(|s| (s.to_owned(), Some(n))))
        .collect();
    assert_eq!(got, want);
    sb.assert_clean();
}
