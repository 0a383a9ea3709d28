//! Resource limits through a cgroup per container, on the host's real cgroups
//! (v1 here; the paths below also know v2's file names).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::records::{self, ls};
use crate::util::*;

const ROOT: &str = "/sys/fs/cgroup";

fn v2() -> bool {
    !Path::new(ROOT).join("memory").exists()
}

/// The directory of `controller` for the cgroup at `path` (as
/// /proc/PID/cgroup names it).
fn dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if v2() {
        Path::new(ROOT).join(rel)
    } else {
        Path::new(ROOT).join(controller).join(rel)
    }
}

fn read(controller: &str, path: &str, v1_file: &str, v2_file: &str) -> String {
    let file = dir(controller, path).join(if v2() { v2_file } else { v1_file });
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_owned()
}

/// The memory cgroup of the host's process `pid`.
fn cgroup_of(pid: i32) -> String {
    memory_cgroup(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap())
}

/// What a running psdock prints up to a line `--`.
fn lines_before_dashes(run: &mut Running) -> String {
    let mut text = String::new();
    loop {
        let line = run.line();
        if line == "--" {
            return text;
        }
        text.push_str(&line);
        text.push('\n');
    }
}

/// The memory cgroup's path in /proc/PID/cgroup's text (v2: the one line).
fn memory_cgroup(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let wanted = if v2() {
                ctrl.is_empty()
            } else {
                ctrl == "memory"
            };
            wanted.then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no memory cgroup in {text:?}"))
}

/// Every directory a container's cgroup has: none may be left at the end.
fn assert_gone(path: &str) {
    let controllers: &[&str] = if v2() {
        &[""]
    } else {
        &[
            "memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer",
        ]
    };
    for c in controllers {
        let d = dir(c, path);
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn without_limits_no_cgroup_is_made() {
    let sb = Sandbox::new();
    let out = sb.run(["cat", "/proc/self/cgroup"]);
    assert_eq!(code(&out), 0, "{out:?}");
    // The container's processes stay where psdock (and so this test) is.
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(stdout(&out), ours);
    assert!(!stdout(&out).contains("psdock_"), "{}", stdout(&out));
    sb.assert_clean();
}

#[test]
fn limits_are_in_place_before_the_command_runs_and_the_cgroup_goes_with_it() {
    let sb = Sandbox::new();
    let mut run = sb.spawn([
        "-memory",
        "64m",
        "-memory-swap",
        "64m",
        "-memory-reservation",
        "32m",
        "-pids-limit",
        "50",
        "-cpus",
        "0.5",
        "-cpu-shares",
        "512",
        "-cpuset-cpus",
        "0",
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo --; read x",
    ]);
    let text = lines_before_dashes(&mut run);
    let path = memory_cgroup(&text);
    assert!(path.ends_with(&format!("/{}", path.rsplit('/').next().unwrap())));
    assert!(
        path.rsplit('/').next().unwrap().starts_with("psdock_"),
        "{path}"
    );
    // Every process of the container is in it, in every hierarchy.
    if !v2() {
        for line in text
            .lines()
            .filter(|l| !l.contains("name=") && !l.starts_with("0::"))
        {
            assert!(line.ends_with(&path), "{line} is not in {path}");
        }
    }
    let mib64 = (64u64 << 20).to_string();
    assert_eq!(
        read("memory", &path, "memory.limit_in_bytes", "memory.max"),
        mib64
    );
    if v2() {
        assert_eq!(read("memory", &path, "", "memory.swap.max"), "0");
    } else {
        assert_eq!(
            read("memory", &path, "memory.memsw.limit_in_bytes", ""),
            mib64
        );
    }
    assert_eq!(
        read("memory", &path, "memory.soft_limit_in_bytes", "memory.low"),
        (32u64 << 20).to_string()
    );
    assert_eq!(read("pids", &path, "pids.max", "pids.max"), "50");
    if v2() {
        assert_eq!(read("cpu", &path, "", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("cpu", &path, "cpu.cfs_quota_us", ""), "50000");
        assert_eq!(read("cpu", &path, "cpu.cfs_period_us", ""), "100000");
        assert_eq!(read("cpu", &path, "cpu.shares", ""), "512");
    }
    assert_eq!(read("cpuset", &path, "cpuset.cpus", "cpuset.cpus"), "0");
    run.send_line("");
    sb.ends(run, 0);
    assert_gone(&path);
}

#[test]
fn a_fork_loop_stops_at_the_pids_limit() {
    let sb = Sandbox::new();
    // Up to 30 background sleeps, each counted before it is forked: under a
    // limit of 10 (the shell included) the fork fails and the shell gives up.
    let script =
        "i=0; while [ $i -lt 30 ]; do echo $i; sleep 1000 & i=$((i+1)); done; echo started";
    let last = |text: &str| -> u32 {
        text.lines()
            .rev()
            .find_map(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("nothing counted: {text}"))
    };
    let out = sb.run(["-pids-limit", "10", "sh", "-c", script]);
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("can't fork"), "{out:?}");
    assert!(!text.contains("started"), "{out:?}");
    assert_eq!(
        last(&text),
        9,
        "the shell and 9 sleeps fit, the 10th fork fails: {text}"
    );
    sb.assert_clean();
    // Without the limit, all 30 start.
    let out = sb.run(["sh", "-c", script]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).ends_with("29\nstarted\n"), "{out:?}");
    sb.assert_clean();
}

/// CPU time the cgroup used, in nanoseconds.
fn cpu_used_ns(path: &str) -> u64 {
    if v2() {
        let stat = read("cpu", path, "", "cpu.stat");
        let usec: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .unwrap()
            .parse()
            .unwrap();
        usec * 1000
    } else {
        read("cpuacct", path, "cpuacct.usage", "").parse().unwrap()
    }
}

#[test]
fn half_a_cpu_holds_a_busy_loop_near_half_a_core() {
    let sb = Sandbox::new();
    let mut run = sb.spawn([
        "-cpus",
        "0.5",
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo --; while :; do :; done",
    ]);
    let path = memory_cgroup(&lines_before_dashes(&mut run));
    // A window of two seconds: the counter, not the test's clock, measures.
    let (t0, u0) = (Instant::now(), cpu_used_ns(&path));
    std::thread::sleep(Duration::from_secs(2));
    let (t1, u1) = (Instant::now(), cpu_used_ns(&path));
    let share = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    // Two cores shared with other builds: below half is fair game, well
    // above it is the limit not holding.
    assert!(
        (0.1..=0.6).contains(&share),
        "a busy loop under -cpus 0.5 used {share:.2} of a core"
    );
    run.signal(nix::sys::signal::Signal::SIGTERM);
    sb.ends(run, 143);
    assert_gone(&path);
}

fn exec_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock-exec"))
}

#[test]
fn psdock_exec_joins_the_containers_cgroup() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-memory", "64m", "sleep", "1000"]);
    let c = records::start(&sb, cmd);
    let init = c.init_pid();
    let path = cgroup_of(init);
    assert!(path.contains(c.id()), "{path}");
    let out = output(
        Command::new(exec_bin())
            .env("PSDOCK_STATE_DIR", sb.state_dir())
            .args([c.id(), "cat", "/proc/self/cgroup"]),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(memory_cgroup(&stdout(&out)), path);
    drop(c);
    sb.assert_clean();
    assert_gone(&path);
}

#[test]
fn prune_removes_the_cgroup_of_a_killed_psdock() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-pids-limit", "20", "sleep", "1000"]);
    let mut c = records::start(&sb, cmd);
    let init = c.init_pid();
    let path = cgroup_of(init);
    c.kill();
    wait_ended("the init to end", init);
    assert!(dir("pids", &path).exists(), "the killed psdock removed it");
    let out = ls(&sb, &["--prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_gone(&path);
    sb.assert_clean();
}

#[test]
fn bad_limits_are_one_line_and_exit_125() {
    let sb = Sandbox::new();
    for (flag, value) in [
        ("-memory", "1x"),
        ("-memory", "1k"),
        ("-memory-swap", "64m"),
        ("-cpus", "0"),
        ("-cpus", "many"),
        ("-cpu-shares", "1"),
        ("-cpu-weight", "10001"),
        ("-cpuset-cpus", "0-99999"),
        ("-pids-limit", "lots"),
        ("-blkio-weight", "5"),
        ("-device-read-bps", "/dev/null:1mb"),
        ("-device-write-bps", "/dev/sda"),
        ("-oom", "maybe"),
        ("-device", "/dev/fuse:x"),
        ("-device", "/etc/passwd"),
        ("-oom", "kill"),
    ] {
        let out = sb.run([flag, value, "true"]);
        assert_psdock_error(&out, &[flag, value]);
        sb.assert_clean();
    }
}

#[test]
fn a_limit_the_host_cannot_apply_is_refused() {
    let blkio = Path::new(ROOT).join("blkio");
    if v2()
        || ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| blkio.join(f).exists())
    {
        eprintln!("skipped: this host can weigh block I/O");
        return;
    }
    let sb = Sandbox::new();
    let out = sb.run(["-blkio-weight", "100", "true"]);
    let err = assert_psdock_error(&out, &["-blkio-weight", "cannot apply"]);
    assert!(err.contains("blkio.weight"), "{err}");
    sb.assert_clean();
}

/// Reads 64 MiB into one buffer: more than the 32 MiB the tests allow.
const HOG: &str = "dd if=/dev/zero of=/dev/null bs=64M count=1";
/// A hog whose memory is touched in user space. Under `-oom kill|restart`
/// on v1 the kernel's killer is off in the cgroup, and a charge that fails
/// inside a system call (dd's read into its fresh 64 MiB buffer) is a short
/// read, not an OOM: only a fault of the process's own is held for psdock.
const USER_HOG: &str = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'";
const NO_SWAP: [&str; 4] = ["-memory", "32m", "-memory-swap", "32m"];

fn statuses(hook: &crate::hook::Hook) -> Vec<String> {
    hook.requests().iter().map(|r| r.status()).collect()
}

#[test]
fn oom_kill_ends_the_whole_container_tells_the_hook_and_exits_137() {
    let sb = Sandbox::new();
    let hook = crate::hook::Hook::ok();
    let script = format!("{USER_HOG}; echo carried on; sleep 1000");
    let url = hook.url();
    let mut args = vec!["-web-hook", &url, "-oom", "kill"];
    args.extend(NO_SWAP);
    args.extend(sh(&script));
    let out = sb.run(args);
    assert_eq!(code(&out), 137, "{out:?}");
    assert!(!stdout(&out).contains("carried on"), "{out:?}");
    assert!(
        stderr(&out).contains("ran out of memory and was ended whole (-oom kill)"),
        "{out:?}"
    );
    assert_eq!(statuses(&hook), ["starting", "running", "oom", "crashed"]);
    let oom = &hook.requests()[2];
    assert_eq!(oom.ps()["oom_kills"], 1, "{:?}", oom.ps());
    assert_eq!(hook.requests()[3].ps()["signal"], "SIGKILL");
    sb.assert_clean();
}

#[test]
fn oom_notify_tells_the_hook_and_a_shell_carries_on() {
    let sb = Sandbox::new();
    let hook = crate::hook::Hook::ok();
    let script = format!("{HOG}; echo carried on after $?");
    let url = hook.url();
    let mut args = vec!["-web-hook", &url];
    args.extend(NO_SWAP);
    args.extend(sh(&script));
    let out = sb.run(args);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).contains("carried on after 137"), "{out:?}");
    assert!(
        stderr(&out).contains("OOM killer ended processes"),
        "{out:?}"
    );
    assert_eq!(statuses(&hook), ["starting", "running", "oom", "crashed"]);
    assert_eq!(hook.requests()[2].ps()["oom_kills"], 1);
    sb.assert_clean();
}

#[test]
fn a_command_the_oom_killer_ended_is_reported_as_such() {
    let sb = Sandbox::new();
    let mut args = NO_SWAP.to_vec();
    args.extend(HOG.split(' '));
    let out = sb.run(args);
    assert_eq!(code(&out), 137, "{out:?}");
    assert!(
        stderr(&out).contains("the command was killed by the kernel's OOM killer"),
        "{out:?}"
    );
    sb.assert_clean();
    // The same command with room enough: no word of it.
    let out = sb.run([
        "-memory",
        "256m",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(!stderr(&out).contains("OOM"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn device_lets_one_host_node_in_with_the_access_asked_and_no_other() {
    if v2() {
        let sb = Sandbox::new();
        let out = sb.run(["-device", "/dev/fuse", "true"]);
        assert_psdock_error(&out, &["-device", "BPF"]);
        return;
    }
    let sb = Sandbox::new();
    let script = "ls -l /dev/fuse; (exec 3</dev/fuse) && echo read ok; \
                  (exec 3<>/dev/fuse) 2>&1 || echo write refused; \
                  ls /dev/loop-control 2>&1 || echo no loop-control";
    let out = sb.run(["-device", "/dev/fuse:r", "sh", "-c", script]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    assert!(text.contains(" 10,") && text.contains("229 "), "{text}");
    assert!(text.contains("read ok"), "{text}");
    // The devices cgroup, not the node's mode, refuses the write: root
    // could open a 0600 node for writing otherwise.
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(text.contains("write refused"), "{text}");
    assert!(text.contains("no loop-control"), "{text}");
    sb.assert_clean();
    // With rwm (the default) it opens for writing too; without -device it is not there.
    let out = sb.run([
        "-device",
        "/dev/fuse",
        "sh",
        "-c",
        "exec 3<>/dev/fuse && echo rw ok",
    ]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "rw ok\n".to_owned()),
        "{out:?}"
    );
    sb.assert_clean();
    let out = sb.run(["sh", "-c", "ls /dev/fuse"]);
    assert_ne!(code(&out), 0, "{out:?}");
    sb.assert_clean();
}

fn row(sb: &Sandbox, id: &str) -> serde_json::Value {
    records::ls_json(sb, false)
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed"))
}

#[test]
fn psdock_ls_shows_usage_from_the_cgroup_or_from_proc() {
    let limited = Sandbox::new();
    let mut cmd = limited.psdock();
    cmd.args([
        "-memory",
        "64m",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & wait",
    ]);
    let a = records::start(&limited, cmd);
    let plain = Sandbox::new();
    let mut cmd = plain.psdock();
    cmd.args(["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    let b = records::start(&plain, cmd);

    let pids = |sb: &Sandbox, id: &str| {
        wait_for("both sleeps to run", || {
            let r = row(sb, id);
            (r["usage"]["pids"].as_u64()? >= 3).then_some(r)
        })
    };
    let r = pids(&limited, a.id());
    let u = &r["usage"];
    assert_eq!(u["source"], "cgroup", "{r}");
    assert_eq!(u["memory_limit_bytes"], 64u64 << 20, "{r}");
    assert_eq!(u["pids"], 3, "{r}");
    assert!(u["cpu_ns"].as_u64().is_some(), "{r}");
    assert_eq!(r["oom_kills"], 0, "{r}");
    let r = pids(&plain, b.id());
    let u = &r["usage"];
    assert_eq!(u["source"], "proc", "{r}");
    assert!(u["memory_bytes"].as_u64().unwrap() > 0, "{r}");
    assert!(u["memory_limit_bytes"].is_null(), "{r}");
    assert!(r.get("oom_kills").is_none(), "{r}");

    let out = ls(&limited, &["--stats", "--no-stream"]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("CONTAINER_ID"), "{text}");
    let line = text.lines().find(|l| l.starts_with(a.id())).unwrap();
    assert!(line.contains(" / 64.0MiB"), "{text}");
    assert!(line.trim_end().ends_with(" 3"), "{text}");
    let out = ls(&plain, &["--stats", "--no-stream"]);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with(b.id())).unwrap();
    assert!(line.contains("(rss, no cgroup)"), "{text}");
    drop((a, b));
    limited.assert_clean();
    plain.assert_clean();
}

#[test]
fn psdock_ls_counts_oom_kills_while_the_container_runs_on() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(NO_SWAP)
        .args(sh(&format!("{HOG}; {HOG}; sleep 1000")));
    let c = records::start(&sb, cmd);
    wait_for("two OOM kills", || {
        (row(&sb, c.id())["oom_kills"] == 2).then_some(())
    });
    drop(c);
    sb.assert_clean();
}

/// On this hybrid host, a private mount namespace with cgroup2 alone at
/// /sys/fs/cgroup is a v2 host whose controllers are all taken by v1: psdock
/// must see v2, run without limits, and refuse limits naming the flag.
#[test]
fn a_v2_hierarchy_without_the_controller_is_refused_by_flag() {
    if v2() {
        eprintln!("skipped: the host is v2 already");
        return;
    }
    let sb = Sandbox::new();
    let run = |flags: &str| {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
            "mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" -i \"$1\" -r \"$2\" {flags} true"
        ));
        cmd.arg(crate::util::psdock()).arg(image()).arg(sb.rootfs());
        sb.mark_command(&mut cmd);
        output(&mut cmd)
    };
    let out = run("");
    assert_eq!(code(&out), 0, "{out:?}");
    let out = run("-memory 64m");
    assert_psdock_error(&out, &["-memory", "cgroup v2", "no memory controller"]);
    let out = run("-device /dev/fuse");
    assert_psdock_error(&out, &["-device", "BPF"]);
    sb.assert_clean();
}

/// A host directory bound at /ctl: the attempts leave their marks in it.
fn ctl(sb: &Sandbox) -> (PathBuf, String) {
    let dir = sb.path("ctl");
    std::fs::create_dir(&dir).unwrap();
    let bind = format!("{}:/ctl", dir.display());
    (dir, bind)
}

#[test]
fn oom_restart_ends_the_attempt_and_the_next_runs_in_the_same_cgroup() {
    let sb = Sandbox::new();
    let hook = crate::hook::Hook::ok();
    let (dir, bind) = ctl(&sb);
    // The first attempt hogs and would sleep on: psdock must end it. The
    // second finds the marker and exits 0.
    let script = format!(
        "cat /proc/self/cgroup > /ctl/cgroup$(ls /ctl | grep -c cgroup); \
         test -e /ctl/hogged && exit 0; touch /ctl/hogged; {USER_HOG}; sleep 1000"
    );
    let url = hook.url();
    let mut args = vec![
        "-web-hook",
        &url,
        "-oom",
        "restart",
        "-restart-delay",
        "1ms",
    ];
    args.extend(["-v", &bind]);
    args.extend(NO_SWAP);
    args.extend(sh(&script));
    let out = sb.run(args);
    assert_eq!(code(&out), 0, "{out:?}");
    let seen: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| {
            (
                r.status(),
                r.ps()["restarts"].clone(),
                r.ps()["will_restart"].clone(),
            )
        })
        .collect();
    let (n, null, b) = (
        serde_json::Value::from,
        serde_json::Value::Null,
        serde_json::Value::Bool,
    );
    let s = |t: &str| t.to_owned();
    assert_eq!(
        seen,
        [
            (s("starting"), n(0), null.clone()),
            (s("running"), n(0), null.clone()),
            (s("oom"), n(0), null.clone()),
            (s("crashed"), n(0), b(true)),
            (s("starting"), n(1), null.clone()),
            (s("running"), n(1), null.clone()),
            (s("crashed"), n(1), b(false)),
        ]
    );
    let cgroup = |i: u32| {
        let text = std::fs::read_to_string(dir.join(format!("cgroup{i}"))).unwrap();
        memory_cgroup(&text)
    };
    let path = cgroup(0);
    assert!(path.contains("psdock_"), "{path}");
    assert_eq!(cgroup(1), path, "one cgroup for both attempts");
    assert_gone(&path);
    sb.assert_clean();
}

#[test]
fn oom_kill_ends_the_service_whatever_the_restart_policy() {
    let sb = Sandbox::new();
    let (dir, bind) = ctl(&sb);
    // Were it restarted, the second attempt would exit 0.
    let script = format!("echo run >> /ctl/count; test -e /ctl/hogged && exit 0; touch /ctl/hogged; {USER_HOG}; sleep 1000");
    let mut args = vec![
        "-oom",
        "kill",
        "-restart",
        "always",
        "-restart-delay",
        "1ms",
    ];
    args.extend(["-v", &bind]);
    args.extend(NO_SWAP);
    args.extend(sh(&script));
    let out = sb.run(args);
    assert_eq!(code(&out), 137, "{out:?}");
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "run\n");
    sb.assert_clean();
}

#[test]
fn under_init_the_init_and_the_command_are_born_in_the_cgroup_and_limited() {
    let sb = Sandbox::new();
    // Inside, as the host sees them (no cgroup namespace): PID 1's cgroup,
    // the command's, then a `+` for each background sleep the pids limit
    // let in; busybox sh gives up at the first fork refused.
    let script = "cat /proc/1/cgroup; echo --; cat /proc/self/cgroup; echo --; \
                  for i in 1 2 3 4 5 6 7 8; do sleep 5 & echo +; done";
    let out = sb.run([
        "-init",
        "-memory",
        "64m",
        "-pids-limit",
        "6",
        "sh",
        "-c",
        script,
    ]);
    assert!(stderr(&out).contains("can't fork"), "{out:?}");
    let text = stdout(&out);
    let parts: Vec<&str> = text.split("--\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    let init = memory_cgroup(parts[0]);
    assert!(init.contains("psdock_"), "PID 1 outside the cgroup: {init}");
    assert_eq!(memory_cgroup(parts[1]), init);
    // init and sh are 2 of the 6: at most 4 sleeps could start.
    assert!(
        parts[2].matches('+').count() <= 4,
        "the pids limit did not hold: {text}"
    );
    sb.assert_clean();
    assert_gone(&init);
}

#[test]
fn health_checks_run_inside_the_containers_cgroup() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-memory", "64m", "-health-interval", "50ms"])
        .args(["-health-cmd", "cat /proc/self/cgroup", "sleep", "1000"]);
    let c = records::start(&sb, cmd);
    let init = c.init_pid();
    let path = cgroup_of(init);
    let output = records::wait_for("a check's output", || {
        let listed = records::ls_json(&sb, false);
        let out = listed.first()?["health"]["last_check"]["output"]
            .as_str()?
            .to_owned();
        Some(out).filter(|o| !o.is_empty())
    });
    assert_eq!(memory_cgroup(&output), path, "{output}");
    drop(c);
    sb.assert_clean();
    assert_gone(&path);
}

#[test]
fn the_table_shows_cpu_mem_and_pids_of_containers_with_a_cgroup() {
    let sb = Sandbox::new();
    let plain_rootfs = sb.path("plain-rootfs");
    let mut cmd = sb.psdock();
    cmd.args(["-r", plain_rootfs.to_str().unwrap(), "sleep", "1000"]);
    let plain = records::start(&sb, cmd);
    // With only a container without a cgroup, no usage columns (and no wait).
    let text = stdout(&ls(&sb, &[]));
    assert!(!text.contains("CPU%"), "{text}");

    let mut cmd = sb.psdock();
    cmd.args([
        "-memory",
        "64m",
        "-cpus",
        "0.5",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let busy = records::start(&sb, cmd);
    let out = ls(&sb, &[]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{text}"))
    };
    let (cpu, mem, pids) = (at("CPU%"), at("MEM"), at("PIDS"));
    let cells = |id: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{text}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    // MEM is `USED / LIMIT`: three words.
    let row = cells(busy.id());
    let percent: f64 = row[cpu].trim_end_matches('%').parse().unwrap();
    // A busy loop under half a CPU, sampled over 0.2 s: well above idle,
    // well below a whole core.
    assert!((10.0..=80.0).contains(&percent), "{text}");
    assert_eq!(row[mem + 1], "/", "{text}");
    assert_eq!(row[mem + 2], "64.0MiB", "{text}");
    assert_eq!(row[pids + 2], "1", "{text}");
    let row = cells(plain.id());
    assert_eq!(&row[cpu..cpu + 3], ["-", "-", "-"], "{text}");
    drop((busy, plain));
    sb.assert_clean();
}
