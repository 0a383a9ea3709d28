//! State records, psdock-ls and reclaiming what a killed psdock left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

pub fn ls_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock-ls"))
}

/// `psdock-ls ARGS...` against the sandbox's state directory.
pub fn ls(sb: &Sandbox, args: &[&str]) -> Output {
    Command::new(ls_bin())
        .env("PSDOCK_STATE_DIR", sb.state_dir())
        .args(args)
        .output()
        .unwrap()
}

/// `psdock-ls --json [--all]`, checked to exit 0 and to print a JSON array.
pub fn ls_json(sb: &Sandbox, all: bool) -> Vec<Value> {
    let out = ls(
        sb,
        if all {
            &["--json", "--all"]
        } else {
            &["--json"]
        },
    );
    assert_eq!(code(&out), 0, "psdock-ls failed: {}", stderr(&out));
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?}\n{}", stdout(&out)),
    }
}

/// Polls `cond` until it holds; panics with `what` after 20 s.
pub fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A psdock started in the background, its container running.
pub struct Running {
    pub child: Child,
    /// Its row in `psdock-ls --json`.
    pub row: Value,
}

impl Running {
    pub fn id(&self) -> &str {
        self.row["id"].as_str().unwrap()
    }

    pub fn init_pid(&self) -> i32 {
        self.row["init_pid"].as_i64().unwrap() as i32
    }

    /// SIGKILL psdock, and wait for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM psdock, and its exit code.
    pub fn stop(&mut self) -> i32 {
        signal(self.child.id() as i32, libc::SIGTERM);
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            self.stop();
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: plain system call.
    unsafe { libc::kill(pid, sig) };
}

/// Starts `cmd` (a psdock command line) and waits until psdock-ls lists it running.
pub fn start(sb: &Sandbox, mut cmd: Command) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i64;
    let mut running = Running {
        child,
        row: Value::Null,
    };
    running.row = wait_for("the container to be listed as running", || {
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!("psdock ended early: {status}");
        }
        ls_json(sb, false)
            .into_iter()
            .find(|r| r["pid"].as_i64() == Some(pid))
    });
    running
}

/// The names in the sandbox's state directory.
pub fn entries(sb: &Sandbox) -> Vec<String> {
    match std::fs::read_dir(sb.state_dir()) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn mounted_here(sb: &Sandbox) -> bool {
    let here = sb.dir.path().to_str().unwrap().to_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&here))
}

/// Field 22 of /proc/<pid>/stat.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(22 - 3).unwrap().parse().unwrap()
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn lists_a_running_container_as_table_json_and_ids() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["sh", "-c", "sleep 1000", "two words"]);
    let mut c = start(&sb, cmd);
    let id = c.id().to_owned();

    let row = &c.row;
    assert!(id.starts_with("psdock_") && id.len() == 14, "{id}");
    assert_eq!(row["status"], "running");
    assert_eq!(row["rootfs"], sb.rootfs().to_str().unwrap());
    assert_eq!(
        row["image"],
        image().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(
        row["command"],
        serde_json::json!(["sh", "-c", "sleep 1000", "two words"])
    );
    // INIT_PID is the container's init as the host sees it: psdock's child.
    assert_eq!(ppid(c.init_pid()), c.child.id() as i32);
    let started = humantime::parse_rfc3339(row["started_at"].as_str().unwrap()).unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(started)
        .unwrap();
    assert!(age < Duration::from_secs(60), "{age:?}");
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    for key in [
        "id",
        "pid",
        "init_pid",
        "rootfs",
        "image",
        "command",
        "started_at",
        "status",
    ] {
        assert!(keys.iter().any(|k| *k == key), "missing {key} in {row}");
    }

    let out = ls(&sb, &["-q"]);
    assert_eq!((code(&out), stdout(&out)), (0, format!("{id}\n")));

    let out = ls(&sb, &[]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "#",
            "CONTAINER_ID",
            "PID",
            "INIT_PID",
            "RESTARTS",
            "ROOTFS",
            "NET",
            "PORTS",
            "COMMAND"
        ]
    );
    let (pid, init) = (c.child.id().to_string(), c.init_pid().to_string());
    let root = sb.rootfs().display().to_string();
    assert_eq!(
        lines[1],
        format!(
            "{:<4}{id:<16}{pid:<w_pid$}{init:<w_init$}{:<10}{root:<w_root$}host  -      sh -c sleep 1000 two words",
            0,
            0,
            w_pid = pid.len().max(3) + 2,
            w_init = init.len().max(8) + 2,
            w_root = root.len().max(6) + 2,
        )
    );
    // Every column starts where its header does.
    for name in ["CONTAINER_ID", "ROOTFS", "COMMAND"] {
        let at = lines[0].find(name).unwrap();
        assert_ne!(lines[1].as_bytes()[at], b' ', "{name} misaligned:\n{text}");
        assert_eq!(
            lines[1].as_bytes()[at - 1],
            b' ',
            "{name} misaligned:\n{text}"
        );
    }

    assert_eq!(c.stop(), 128 + libc::SIGTERM);
    let out = ls(&sb, &[]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "No psdock container running\n".to_owned())
    );
    assert_eq!(ls_json(&sb, true), Vec::<Value>::new());
    assert_eq!(entries(&sb), Vec::<String>::new());
    sb.assert_clean();
}

#[test]
fn the_entry_is_private_and_removed_when_a_run_fails() {
    let sb = Sandbox::new();
    let out = sb.run(["/no/such/command"]);
    assert_eq!(code(&out), 127);
    assert_eq!(entries(&sb), Vec::<String>::new());
    sb.assert_clean();

    let mut cmd = sb.psdock();
    cmd.args(["sleep", "1000"]);
    let c = start(&sb, cmd);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(sb.state_dir()), 0o700);
    assert_eq!(mode(sb.state_dir().join(format!("{}.json", c.id()))), 0o600);
}

#[test]
fn a_killed_psdock_is_stale_and_prune_reclaims_it_sparing_bind_mount_sources() {
    let sb = Sandbox::new();
    let src = sb.path("data");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("precious"), "keep me").unwrap();
    let mut cmd = sb.psdock();
    cmd.arg("-v").arg(format!("{}:/data", src.display())).args([
        "sh",
        "-c",
        "echo hi > /data/from-container; echo x > /upper-file; sleep 1000",
    ]);
    let mut c = start(&sb, cmd);
    let id = c.id().to_owned();
    wait_for("the container's write", || {
        src.join("from-container").exists().then_some(())
    });
    let init = c.init_pid();

    c.kill();
    // The container dies with its psdock (PDEATHSIG).
    wait_ended("the init to end", init);
    let out = ls(&sb, &[]);
    assert_eq!(stdout(&out), "No psdock container running\n");
    let all = ls_json(&sb, true);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0]["id"].as_str(), all[0]["status"].as_str()),
        (Some(&*id), Some("stale"))
    );
    let out = ls(&sb, &["--all"]);
    assert!(stdout(&out).contains(" stale "), "{}", stdout(&out));
    // What it left is really there: the mounts, the sibling, the entry.
    assert_eq!(sb.mounts(), [sb.sibling(), sb.rootfs()]);
    assert!(sb.sibling().join("upper/upper-file").exists());

    let out = ls(&sb, &["--prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("reclaimed {id} ({})\n", sb.rootfs().display())
    );
    sb.assert_clean();
    assert_eq!(entries(&sb), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(src.join("precious")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(src.join("from-container")).unwrap(),
        "hi\n"
    );

    // Nothing left to prune; and the rootfs can be used again.
    let out = ls(&sb, &["--prune"]);
    assert_eq!((code(&out), stdout(&out)), (0, String::new()));
    runs_fresh(&sb);
    sb.assert_clean();
}

/// A run on the reclaimed ROOTFS sees none of the killed run's writes.
fn runs_fresh(sb: &Sandbox) {
    let out = sb.run(["sh", "-c", "test ! -e /upper-file && echo fresh"]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "fresh\n".to_owned()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_next_psdock_on_a_rootfs_left_by_a_killed_one_reclaims_it() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["sleep", "1000"]);
    let mut c = start(&sb, cmd);
    c.kill();
    assert!(mounted_here(&sb));
    let out = sb.run(["echo", "again"]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "again\n".to_owned()),
        "{}",
        stderr(&out)
    );
    sb.assert_clean();
    assert_eq!(entries(&sb), Vec::<String>::new());
}

#[test]
fn prune_after_a_killed_psdock_keeps_an_empty_rootfs_the_user_made() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.rootfs()).unwrap();
    let mut cmd = sb.psdock();
    cmd.args(["sh", "-c", "echo x > /upper-file; sleep 1000"]);
    let mut c = start(&sb, cmd);
    let init = c.init_pid();
    c.kill();
    wait_ended("the init to end", init);
    assert_eq!(ls_json(&sb, true)[0]["status"].as_str(), Some("stale"));

    let out = ls(&sb, &["--prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    sb.assert_clean_but_rootfs();
    let left: Vec<_> = std::fs::read_dir(sb.rootfs()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // And it serves again, as the user's, to a run that ends normally.
    runs_fresh(&sb);
    sb.assert_clean_but_rootfs();
    assert!(std::fs::read_dir(sb.rootfs()).unwrap().next().is_none());
}

#[test]
fn a_second_psdock_on_a_rootfs_in_use_is_refused_and_touches_nothing() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["sleep", "1000"]);
    let c = start(&sb, cmd);
    let out = sb.run(["true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "psdock: -rootfs {}: in use by another psdock\n",
            sb.rootfs().display()
        )
    );
    // The first one is untouched, and the refused one left no entry.
    let rows = ls_json(&sb, true);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["id"].as_str(), rows[0]["status"].as_str()),
        (Some(c.id()), Some("running"))
    );
    // Prune never touches an entry whose psdock is alive.
    let out = ls(&sb, &["--prune"]);
    assert_eq!((code(&out), stdout(&out)), (0, String::new()));
    assert!(sb.rootfs().join("bin/busybox").exists());
}

/// Writes an entry by hand, in the format psdock writes.
fn forge(sb: &Sandbox, id: &str, psdock: (u32, u64), init: (u32, u64)) {
    std::fs::create_dir_all(sb.state_dir()).unwrap();
    let record = serde_json::json!({
        "version": 1,
        "id": id,
        "psdock": {"pid": psdock.0, "start": psdock.1},
        "init": {"pid": init.0, "start": init.1},
        "image": "/img",
        "rootfs": sb.path(id).to_str().unwrap(),
        "command": ["sleep", "1000"],
        "started_at": "2026-01-02T03:04:05Z",
        "created": {
            "mount": sb.path(id).to_str().unwrap(),
            "rootfs_dir": true,
            "sibling": sb.path(&format!(".{id}.psdock")).to_str().unwrap(),
        },
    });
    std::fs::write(
        sb.state_dir().join(format!("{id}.json")),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_entry_whose_pids_now_belong_to_other_processes_is_stale() {
    let sb = Sandbox::new();
    // Two live processes stand in for a psdock and its init.
    let me = std::process::id();
    let mut other = Command::new("sleep").arg("1000").spawn().unwrap();
    let (me_start, other_start) = (start_time(me), start_time(other.id()));
    forge(
        &sb,
        "psdock_00000a1",
        (me, me_start),
        (other.id(), other_start),
    );
    // The same pids, but they were reused: the start times differ.
    forge(
        &sb,
        "psdock_00000b2",
        (me, me_start + 1),
        (other.id(), other_start + 1),
    );
    forge(
        &sb,
        "psdock_00000c3",
        (me, me_start),
        (other.id(), other_start - 1),
    );

    let status = |rows: &[Value], id: &str| {
        rows.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_owned())
    };
    let running = ls_json(&sb, false);
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(
        status(&running, "psdock_00000a1").as_deref(),
        Some("running")
    );
    let all = ls_json(&sb, true);
    assert_eq!(status(&all, "psdock_00000b2").as_deref(), Some("stale"));
    // psdock alive, init's pid reused: not running, and not to be reclaimed.
    assert_eq!(status(&all, "psdock_00000c3").as_deref(), Some("stopping"));

    let out = ls(&sb, &["--prune", "-q"]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "psdock_00000b2\n".to_owned()),
        "{}",
        stderr(&out)
    );
    // The reused pid's real owner was not touched.
    assert!(other.try_wait().unwrap().is_none());
    other.kill().unwrap();
    other.wait().unwrap();
    let mut left = entries(&sb);
    left.sort();
    assert_eq!(left, ["psdock_00000a1.json", "psdock_00000c3.json"]);
}

#[test]
fn corrupt_entries_never_fail_a_listing() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["sleep", "1000"]);
    let c = start(&sb, cmd);
    let good = std::fs::read(sb.state_dir().join(format!("{}.json", c.id()))).unwrap();
    let dir = sb.state_dir();
    std::fs::write(dir.join("psdock_00000d1.json"), &good[..good.len() / 2]).unwrap();
    std::fs::write(dir.join("psdock_00000d2.json"), b"").unwrap();
    std::fs::write(dir.join("psdock_00000d3.json"), b"\xff\x00{garbage").unwrap();
    std::fs::write(dir.join("psdock_00000d4.json"), &good).unwrap(); // another id's record
    std::fs::write(dir.join("README"), b"not an entry").unwrap();

    let rows = ls_json(&sb, false);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], c.id());
    let out = ls(&sb, &[]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    let out = ls(&sb, &["-q"]);
    assert_eq!(stdout(&out), format!("{}\n", c.id()));

    let all = ls_json(&sb, true);
    let mut broken: Vec<&str> = all
        .iter()
        .filter(|r| r["status"] == "broken")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    broken.sort();
    assert_eq!(
        broken,
        [
            "psdock_00000d1",
            "psdock_00000d2",
            "psdock_00000d3",
            "psdock_00000d4"
        ]
    );
    let out = ls(&sb, &["--all"]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("psdock_00000d1  -"),
        "{}",
        stdout(&out)
    );

    // What a broken entry recorded is unknown: prune leaves it, says so, and succeeds.
    let out = ls(&sb, &["--prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("psdock_00000d3: unreadable entry left in place"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("psdock_00000d3.json").exists());
}

#[test]
fn psdock_ls_keeps_answering_while_50_psdocks_start_and_stop() {
    let sb = Sandbox::new();
    let mut children: Vec<Child> = (0..50)
        .map(|i| {
            sb.bare()
                .arg("-i")
                .arg(image())
                .arg("-r")
                .arg(sb.path(&format!("r{i}")))
                .args(["sh", "-c", "sleep 0.$((RANDOM % 5))"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut answers = 0;
    let mut seen = std::collections::HashSet::new();
    let mut done = vec![false; children.len()];
    while !done.iter().all(|d| *d) {
        for (i, c) in children.iter_mut().enumerate() {
            done[i] = done[i] || c.try_wait().unwrap().is_some();
        }
        for row in ls_json(&sb, true) {
            let status = row["status"].as_str().unwrap();
            assert!(
                ["running", "starting", "stopping"].contains(&status),
                "{row}"
            );
            seen.insert(row["id"].as_str().unwrap().to_owned());
        }
        for row in ls_json(&sb, false) {
            assert_eq!(row["status"], "running", "{row}");
        }
        let out = ls(&sb, &[]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        answers += 1;
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(
        answers > 1 && !seen.is_empty(),
        "psdock-ls never saw a container"
    );
    assert_eq!(entries(&sb), Vec::<String>::new());
    assert!(!mounted_here(&sb));
    for i in 0..50 {
        assert!(!sb.path(&format!("r{i}")).exists());
    }
}

#[test]
fn bad_flags_are_one_line_and_exit_125() {
    let sb = Sandbox::new();
    let out = ls(&sb, &["-nope"]);
    assert_eq!(
        (code(&out), stderr(&out)),
        (125, "psdock-ls: unknown flag -nope\n".to_owned())
    );
    let out = ls(&sb, &["-json", "-all"]);
    assert_eq!(code(&out), 0, "Go-style flags: {}", stderr(&out));
    let out = ls(&sb, &["--json", "-q"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}
