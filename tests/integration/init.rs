//! `-init`: PID 1 is psdock's minimal init with the command as its child. It
//! reaps orphans, forwards signals to the command, exits with its code, keeps
//! the command's treatment and its terminal, and gives up its own privileges.

use std::process::{Command, Stdio};

use nix::sys::signal::Signal;

use crate::stdio_tty::Terminal;
use crate::util::*;

/// The init of the container psdock `psdock` runs: its child whose pid is 1
/// in its own namespace.
fn init_of(psdock: i32) -> i32 {
    wait_for("the container's init", || {
        let children =
            std::fs::read_to_string(format!("/proc/{psdock}/task/{psdock}/children")).ok()?;
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .find(|&pid: &i32| status(pid).is_some_and(|st| field(&st, "NSpid").ends_with("\t1")))
    })
}

/// Every process of the PID namespace `init` is the init of, as `(pid, state)`.
fn namespace(init: i32) -> Vec<(i32, char)> {
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let ours = ns(init).expect("the init's namespace");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ns(pid).as_ref() == Some(&ours))
        .filter_map(|pid| Some((pid, field(&status(pid)?, "State").chars().next()?)))
        .collect()
}

fn with_init<'a>(args: &[&'a str]) -> Vec<&'a str> {
    std::iter::once("-init")
        .chain(args.iter().copied())
        .collect()
}

#[test]
fn orphans_are_reaped() {
    let sb = Sandbox::new();
    // Three double forks: each `cat` is orphaned to PID 1, and ends once the
    // test has written the FIFO, after the command became `sleep`, which
    // never waits for anything (as PID 1, it would leave three zombies).
    let script = "mkfifo /tmp/go; for i in 1 2 3; do sh -c 'cat /tmp/go >/dev/null &'; done; \
                  echo spawned; exec sleep 1000";
    let mut run = sb.spawn(with_init(&sh(script)));
    assert_eq!(run.line(), "spawned");
    let init = init_of(run.pid());
    let named = |name: &str| {
        namespace(init)
            .into_iter()
            .filter(|&(pid, _)| status(pid).is_some_and(|st| field(&st, "Name") == name))
            .count()
    };
    wait_for("the orphans to read the FIFO and sleep to run", || {
        (named("cat") == 3 && named("sleep") == 1).then_some(())
    });
    let parents: Vec<String> = namespace(init)
        .into_iter()
        .filter(|&(pid, _)| status(pid).is_some_and(|st| field(&st, "Name") == "cat"))
        .map(|(pid, _)| field(&status(pid).unwrap(), "PPid").to_owned())
        .collect();
    assert_eq!(parents, vec![init.to_string(); 3]);
    std::fs::write(sb.rootfs().join("tmp/go"), b"").unwrap();
    // Left: the init and sleep, no zombie.
    wait_for("the orphans to be reaped", || {
        let ps = namespace(init);
        (ps.len() == 2 && ps.iter().all(|&(_, s)| s != 'Z')).then_some(())
    });
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
}

#[test]
fn a_writer_to_a_closed_pipe_ends_with_sigpipe() {
    // `psdock ... sh -c 'while :; do echo y; done' | head -2`: as PID 1 the
    // shell would never see SIGPIPE, and write on for ever.
    let sb = Sandbox::new();
    let mut psdock = sb
        .psdock()
        .args(with_init(&sh("while :; do echo y; done")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let head = Command::new("head")
        .arg("-2")
        .stdin(psdock.stdout.take().unwrap())
        .output()
        .unwrap();
    assert_eq!(stdout(&head), "y\ny\n");
    let status = wait_for("psdock to exit", || psdock.try_wait().unwrap());
    assert_eq!(status.code(), Some(128 + libc::SIGPIPE));
    sb.assert_clean();
}

#[test]
fn sigterm_sigint_and_sigusr1_reach_a_command_that_traps_them() {
    let sb = Sandbox::new();
    let traps = "trap 'echo USR1' USR1; trap 'echo INT' INT; trap 'echo TERM; exit 7' TERM; \
                 echo ready; sleep 1000 & while :; do wait; done";
    let mut run = sb.spawn(with_init(&sh(traps)));
    assert_eq!(run.line(), "ready");
    // SIGINT too: the command is not PID 1, so psdock must not apply the
    // PID-1 rule to the init, which handles nothing itself.
    for (sig, line) in [(Signal::SIGUSR1, "USR1"), (Signal::SIGINT, "INT")] {
        run.signal(sig);
        assert_eq!(run.line(), line);
    }
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "TERM");
    sb.ends(run, 7);
}

#[test]
fn the_exit_code_is_the_commands_and_128_plus_n_on_a_signal() {
    let sb = Sandbox::new();
    for (script, expect) in [("exit 3", 3), ("kill -USR1 $$", 138), ("exec true", 0)] {
        let out = sb.run(with_init(&sh(script)));
        assert_eq!(code(&out), expect, "{script}: {out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        sb.assert_clean();
    }
    // A command without a handler, not PID 1: the kernel ends it.
    let run = sb.spawn(with_init(&["sleep", "1000"]));
    init_of(run.pid());
    wait_for("sleep to run", || {
        let init = init_of(run.pid());
        namespace(init)
            .iter()
            .any(|&(pid, _)| status(pid).is_some_and(|st| field(&st, "Name") == "sleep"))
            .then_some(())
    });
    run.signal(Signal::SIGTERM);
    sb.ends(run, 143);
}

#[test]
fn failures_to_start_the_command_are_reported_as_without_init() {
    let sb = Sandbox::new();
    for (args, expect, names) in [
        (&["nosuch"][..], 127, "nosuch: command not found"),
        (&["/etc/passwd"], 126, "/etc/passwd: cannot execute"),
        (&["-cwd", "/nowhere", "true"], 125, "-cwd /nowhere"),
    ] {
        let out = sb.run(with_init(args));
        assert_eq!(code(&out), expect, "{out:?}");
        assert!(
            stderr(&out).starts_with(&format!("psdock: {names}")),
            "{out:?}"
        );
        sb.assert_clean();
    }
}

/// What a process can see of its own treatment.
const TREATMENT: &str = "grep -E '^(Cap|NoNewPrivs|Seccomp|Sig(Blk|Ign))' /proc/self/status; \
     id; pwd; umask; env | sort; ls /proc/self/fd";

#[test]
fn the_command_is_treated_as_without_init() {
    let sb = Sandbox::new();
    for extra in [
        &[][..],
        &["-user", "nobody", "-cwd", "/tmp"],
        &["-cap-drop", "ALL"],
    ] {
        let plain = sb.run([extra, &sh(TREATMENT)[..]].concat());
        let init = sb.run([&["-init"][..], extra, &sh(TREATMENT)].concat());
        assert_eq!(code(&plain), 0, "{plain:?}");
        assert_eq!(stdout(&init), stdout(&plain), "{extra:?}");
        assert_eq!(code(&init), 0, "{init:?}");
    }
    sb.assert_clean();
}

#[test]
fn the_init_holds_no_privilege_and_no_descriptor() {
    let sb = Sandbox::new();
    let mut run = sb.spawn(["-init", "-user", "nobody", "sh", "-c", "echo ready; read x"]);
    assert_eq!(run.line(), "ready");
    let init = init_of(run.pid());
    let st = status(init).unwrap();
    for (name, value) in [
        ("CapEff", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
    ] {
        assert_eq!(field(&st, name), value, "{name}: {st}");
    }
    // Its bounding set is the command's, no wider: nothing to raise from.
    let command: i32 = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let command_st = status(command).unwrap();
    assert_eq!(field(&st, "CapBnd"), field(&command_st, "CapBnd"), "{st}");
    let nobody = field(&st, "Uid").split_whitespace().next().unwrap();
    assert_eq!(nobody, "65534", "{st}");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .collect();
    assert!(fds.is_empty(), "{fds:?}");
    run.send_line("");
    sb.ends(run, 0);
}

/// PID 1 runs psdock-init, from a memfd sealed against writes: not psdock's
/// binary (whose exe a container could reach) and not a copy of psdock's
/// memory. Even root on the host, through /proc, cannot change it.
#[test]
fn the_init_is_psdock_init_from_a_sealed_memfd() {
    let sb = Sandbox::new();
    let mut run = sb.spawn(["-init", "sh", "-c", "echo ready; read x"]);
    assert_eq!(run.line(), "ready");
    let init = init_of(run.pid());
    let exe = std::fs::read_link(format!("/proc/{init}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:psdock-init"),
        "{exe:?}"
    );
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap();
    assert_eq!(cmdline, b"psdock-init\0");
    let st = status(init).unwrap();
    let rss: u64 = field(&st, "VmRSS")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 256, "psdock-init holds {rss} kB: {st}");
    // Busy while it runs, and sealed for good: no write, no resize, no
    // removing the seals.
    let exe = format!("/proc/{init}/exe");
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{err}");
    let file = std::fs::File::open(&exe).unwrap();
    let seals = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & wanted, wanted, "seals {seals:#x}");
    run.send_line("");
    sb.ends(run, 0);
}

#[test]
fn psdock_exec_enters_the_container_of_an_init() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args([
        "-init",
        "-hostname",
        "box",
        "sh",
        "-c",
        "echo hi > /tmp/mark; exec sleep 1000",
    ]);
    let mut c = crate::records::start(&sb, cmd);
    wait_for("the container's file", || {
        sb.rootfs().join("tmp/mark").exists().then_some(())
    });
    let out = Command::new(env!("CARGO_BIN_EXE_psdock-exec"))
        .env("PSDOCK_STATE_DIR", sb.state_dir())
        .args([
            c.id(),
            "sh",
            "-c",
            "hostname; cat /tmp/mark; cat /proc/1/comm",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "box\nhi\npsdock-init\n");
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    wait_for("the container to end", || {
        sb.processes().is_empty().then_some(())
    });
}

#[test]
fn ctrl_c_on_the_terminal_ends_the_command_under_init_with_130() {
    let sb = Sandbox::new();
    let term = Terminal::new(24, 80);
    // The command leads the terminal's foreground process group: the
    // pgrp (field 5) and the terminal's tpgid (field 8) are its pid.
    let script =
        "set -- $(cat /proc/$$/stat); echo \"fg $$ $5 $8\"; echo ready; sleep 100; echo after";
    let mut cmd = sb.psdock();
    cmd.args(["-init", "sh", "-c", script]);
    let mut psdock = term.run(cmd);
    term.screen.wait_for("ready");
    term.type_bytes(b"\x03");
    let status = wait_for("psdock to exit", || psdock.try_wait().unwrap());
    let screen = term.close();
    assert_eq!(status.code(), Some(130), "{screen}");
    let fg = screen
        .lines()
        .find(|l| l.starts_with("fg "))
        .expect("the fg line");
    let ids: Vec<&str> = fg.split_whitespace().skip(1).collect();
    assert_eq!(ids, [ids[0]; 3], "{fg}");
    assert_ne!(ids[0], "1");
    assert!(!screen.contains("after"), "{screen}");
    sb.assert_clean();
}
