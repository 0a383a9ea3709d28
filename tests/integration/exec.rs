//! psdock-exec: entering a running container.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::records::{self, start, wait_for, Running};
use crate::util::*;

fn exec_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock-exec"))
}

fn exec_cmd(sb: &Sandbox, id: &str) -> Command {
    let mut cmd = Command::new(exec_bin());
    cmd.env("PSDOCK_STATE_DIR", sb.state_dir()).arg(id);
    cmd
}

fn exec(sb: &Sandbox, id: &str, args: &[&str]) -> Output {
    exec_cmd(sb, id).args(args).output().unwrap()
}

/// A container running `sleep 1000` as its init, hostname `box`, with a file
/// of its own at /tmp/mark.
fn container(sb: &Sandbox) -> Running {
    let mut cmd = sb.psdock();
    cmd.args([
        "-hostname",
        "box",
        "sh",
        "-c",
        "echo hello > /tmp/mark; exec sleep 1000",
    ]);
    let c = start(sb, cmd);
    wait_for("the container's file", || {
        sb.rootfs().join("tmp/mark").exists().then_some(())
    });
    c
}

#[test]
fn exec_sees_the_containers_hostname_files_and_processes_and_passes_the_exit_code() {
    let sb = Sandbox::new();
    let c = container(&sb);
    let out = exec(
        &sb,
        c.id(),
        &[
            "sh",
            "-c",
            "hostname; cat /tmp/mark; cat /proc/1/comm; echo $$",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], ["box", "hello", "sleep"], "{text}");
    // In the container's PID namespace: a small pid, not the host's.
    let pid: i32 = lines[3].parse().unwrap();
    assert!(pid > 1 && pid < 100, "{pid}");

    let out = exec(&sb, c.id(), &["sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7);
    let out = exec(&sb, c.id(), &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&out), 128 + libc::SIGTERM);
    let out = exec(&sb, c.id(), &["no-such-command"]);
    assert_eq!(code(&out), 127);
    assert_eq!(
        stderr(&out),
        "psdock-exec: no-such-command: command not found\n"
    );
    // What it wrote is in the container's root, seen on the host under ROOTFS.
    let out = exec(
        &sb,
        c.id(),
        &["sh", "-c", "echo from-exec > /tmp/exec-mark"],
    );
    assert_eq!(code(&out), 0);
    assert_eq!(
        std::fs::read_to_string(sb.rootfs().join("tmp/exec-mark")).unwrap(),
        "from-exec\n"
    );
}

#[test]
fn exec_takes_user_cwd_and_env_as_psdock_does_and_is_hardened() {
    let sb = Sandbox::new();
    let c = container(&sb);
    let out = exec(
        &sb,
        c.id(),
        &[
            "-user", "app", "-cwd", "/tmp", "-e", "FOO=bar baz", "--env=X=1",
            "sh", "-c",
            "id -u; id -g; pwd; echo \"$FOO|$X|$HOME\"; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "1000\n1000\n/tmp\nbar baz|1|/home/app\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
    );
    // As root: only the default capabilities, and no way to gain more.
    let out = exec(
        &sb,
        c.id(),
        &["grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/self/status"],
    );
    assert_eq!(stdout(&out), "CapBnd:\t00000000800405fb\nNoNewPrivs:\t1\n");
    // The user comes from the container's own /etc/passwd.
    let out = exec(&sb, c.id(), &["-user", "nosuchuser", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock-exec: -user nosuchuser: no user `nosuchuser` in the image's /etc/passwd\n"
    );
}

#[test]
fn exec_gets_the_containers_capabilities_not_the_default_ones() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-cap-add", "NET_RAW", "-cap-drop", "CHOWN"])
        .args(["sh", "-c", "echo up > /tmp/mark; exec sleep 1000"]);
    let c = start(&sb, cmd);
    wait_for("the container's file", || {
        sb.rootfs().join("tmp/mark").exists().then_some(())
    });
    let out = exec(
        &sb,
        c.id(),
        &["grep", "-E", "^Cap(Prm|Eff|Bnd)", "/proc/self/status"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The default set with NET_RAW (bit 13) and without CHOWN (bit 0).
    assert_eq!(
        stdout(&out),
        "CapPrm:\t00000000800425fa\nCapEff:\t00000000800425fa\nCapBnd:\t00000000800425fa\n"
    );
}

#[test]
fn exec_into_an_unknown_or_stale_container_is_125() {
    let sb = Sandbox::new();
    let out = exec(&sb, "psdock_0000000", &["true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock-exec: psdock_0000000: no such container (psdock-ls lists the running ones)\n"
    );
    let out = exec(&sb, "../../etc", &["true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("not a container id"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(exec_bin()).output().unwrap();
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let mut c = container(&sb);
    let id = c.id().to_owned();
    c.kill();
    let out = exec(&sb, &id, &["true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!("psdock-exec: {id}: container is not running (it is stale)\n")
    );
    let out = records::ls(&sb, &["--prune"]);
    assert_eq!(code(&out), 0);
    sb.assert_clean();
}

#[test]
fn the_entered_process_dies_with_the_container() {
    let sb = Sandbox::new();
    let mut c = container(&sb);
    let mut entered = exec_cmd(&sb, c.id())
        .args(["sh", "-c", "echo started; exec sleep 1000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(entered.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "started\n");
    // The container's init ignores nothing: SIGTERM ends it (as SIGKILL under
    // the PID-1 rule), and the kernel kills the rest of its PID namespace.
    assert_eq!(c.stop(), 128 + libc::SIGTERM);
    let status = entered.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
    sb.assert_clean();
}

#[test]
fn exec_on_a_terminal_gets_a_terminal_of_the_container_and_restores_the_hosts() {
    use crate::stdio_tty::{wait_code, Terminal};
    let sb = Sandbox::new();
    let c = container(&sb);
    let term = Terminal::new(21, 77);
    let before = term.settings();
    let mut cmd = exec_cmd(&sb, c.id());
    cmd.args(["sh", "-c", "tty; stty size; exit 5"]);
    let mut entered = term.run(cmd);
    assert_eq!(wait_code(&mut entered), 5);
    assert_eq!(term.settings(), before, "stty -g changed");
    let screen = term.close();
    // The container's own devpts (its init has no terminal), sized like ours.
    assert!(screen.starts_with("/dev/pts/0\r\n21 77\r\n"), "{screen:?}");
}

#[test]
fn an_inherited_sigchld_ignore_does_not_lose_the_exit_code() {
    let sb = Sandbox::new();
    let c = container(&sb);
    let mut cmd = exec_cmd(&sb, c.id());
    let out = crate::signals::with_sigchld_ignored(&mut cmd)
        .args(["sh", "-c", "exit 5"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 5, "{out:?}");
}

/// Sets traps, says `ready`, and waits on a child forever: a shell that
/// carries on through SIGTERM and answers SIGUSR2 by exiting with 6. The
/// child, which outlives a killed shell, holds none of psdock-exec's pipes.
const CARRIES_ON: &str = "trap 'echo ignoring' TERM; trap 'exit 6' USR2; echo ready; \
                          sleep 1000 >/dev/null 2>&1 & while :; do wait; done";

// As psdock's: a command entered with psdock-exec that carries on through
// SIGTERM is killed (137) -kill-timeout seconds after psdock-exec got it, 10
// by default; -1 is never. The three run side by side, so the default's 10 s
// are paid once.
#[test]
fn the_kill_timeout_bounds_a_stop_of_psdock_exec_10_s_by_default_and_minus_1_is_never() {
    use nix::sys::signal::Signal;
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    let c = container(&sb);
    let entered = |flags: &[&str]| {
        let mut cmd = exec_cmd(&sb, c.id());
        cmd.args(flags).args(["sh", "-c", CARRIES_ON]);
        let mut run = crate::util::Running::start(&mut cmd);
        assert_eq!(run.line(), "ready", "{flags:?}");
        run
    };
    let (mut one, mut default, mut never) = (
        entered(&["-kill-timeout", "1"]),
        entered(&[]),
        entered(&["-kill-timeout", "-1"]),
    );
    let sent = Instant::now();
    for run in [&mut never, &mut default, &mut one] {
        run.signal(Signal::SIGTERM);
        assert_eq!(run.line(), "ignoring");
    }
    let ends = |run: crate::util::Running, at_least: u64| {
        let out = run.finish();
        let took = sent.elapsed();
        assert_eq!(code(&out), 137, "{out:?}");
        assert!(
            took >= Duration::from_secs(at_least),
            "killed after {took:?}"
        );
        took
    };
    let took = ends(one, 1);
    assert!(took < Duration::from_secs(10), "{took:?}");
    ends(default, 10);
    // Past the default, `never` still runs and answers signals.
    never.signal(Signal::SIGUSR2);
    let out = never.finish();
    assert_eq!(code(&out), 6, "{out:?}");
}
