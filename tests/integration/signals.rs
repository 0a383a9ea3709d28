//! Signals sent to psdock: forwarded to a child that handles them, the PID-1 rule
//! for SIGINT/SIGTERM, the kill timeout (10 s by default, -1 never), SIGTERM
//! during set-up, fault signals sent from outside taken as SIGTERM, SIGTTIN and
//! SIGTTOU that never stop psdock, and the end of everything when the init exits.

use std::time::Instant;

use nix::sys::signal::Signal;

use crate::util::*;

/// A shell that reports each trapped signal on stdout and waits for more.
/// `ready` is printed once every trap is set.
fn trapping(traps: &str) -> String {
    format!("{traps}; echo ready; sleep 1000 & while :; do wait; done")
}

#[test]
fn a_child_that_traps_sigterm_gets_it_and_exits_with_its_own_code() {
    let sb = Sandbox::new();
    for (sig, code_) in [(Signal::SIGTERM, 3), (Signal::SIGINT, 4)] {
        let name = &sig.as_str()[3..];
        let mut run = sb.spawn(sh(&trapping(&format!(
            "trap 'echo got {name}; exit {code_}' {name}"
        ))));
        assert_eq!(run.line(), "ready");
        run.signal(sig);
        assert_eq!(run.line(), format!("got {name}"));
        sb.ends(run, code_);
    }
}

#[test]
fn a_child_without_a_handler_is_killed_and_psdock_exits_128_plus_the_signal() {
    let sb = Sandbox::new();
    for (sig, expect) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let run = sb.spawn(["sleep", "1000"]);
        run.init();
        run.signal(sig);
        let out = run.finish();
        assert_eq!(code(&out), expect, "{sig}: {out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        sb.assert_clean();
    }
}

#[test]
fn other_signals_reach_a_trapping_child() {
    let sb = Sandbox::new();
    let rt = libc::SIGRTMIN() + 1;
    let traps = format!(
        "trap 'echo USR1' USR1; trap 'echo HUP' HUP; trap 'echo USR2' USR2; trap 'echo QUIT' QUIT; \
         trap 'echo RT' {rt}; trap 'echo TERM; exit 5' TERM"
    );
    let mut run = sb.spawn(sh(&trapping(&traps)));
    assert_eq!(run.line(), "ready");
    for sig in [
        Signal::SIGUSR1,
        Signal::SIGHUP,
        Signal::SIGUSR2,
        Signal::SIGQUIT,
    ] {
        run.signal(sig);
        assert_eq!(run.line(), &sig.as_str()[3..]);
    }
    // SAFETY: plain kill(2) of our own child with a real-time signal.
    assert_eq!(unsafe { libc::kill(run.pid(), rt) }, 0);
    assert_eq!(run.line(), "RT");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "TERM");
    sb.ends(run, 5);
}

#[test]
fn a_child_that_handles_sigterm_and_carries_on_is_left_running() {
    let sb = Sandbox::new();
    let mut run = sb.spawn(sh(&trapping(
        "trap 'echo ignoring TERM' TERM; trap 'exit 6' USR1",
    )));
    assert_eq!(run.line(), "ready");
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "ignoring TERM");
    // Still alive within the kill timeout: it answers the next signal.
    run.signal(Signal::SIGUSR1);
    sb.ends(run, 6);
}

#[test]
fn the_kill_timeout_kills_a_child_that_ignores_sigterm() {
    let sb = Sandbox::new();
    // Handled and carried on with:
    let mut run = sb.spawn(
        ["-kill-timeout", "1"]
            .into_iter()
            .chain(sh(&trapping("trap 'echo ignoring' TERM"))),
    );
    assert_eq!(run.line(), "ready");
    let sent = Instant::now();
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "ignoring");
    ends_by_the_kill_timeout(&sb, run, sent);

    // Ignored outright (SIG_IGN survives exec): forwarded, then killed by the timeout.
    let run = sb.spawn([
        "-kill-timeout=1",
        "sh",
        "-c",
        "trap '' INT; exec sleep 1000",
    ]);
    let init = run.init();
    let st = wait_for("the shell to exec sleep", || {
        status(init).filter(|st| field(st, "Name") == "sleep")
    });
    assert!(mask_has(&st, "SigIgn", Signal::SIGINT));
    let sent = Instant::now();
    run.signal(Signal::SIGINT);
    ends_by_the_kill_timeout(&sb, run, sent);
}

#[test]
fn the_kill_timeout_is_10_seconds_by_default_and_minus_1_is_never() {
    let never_sb = Sandbox::new();
    let mut never = never_sb.spawn(["-kill-timeout", "-1"].into_iter().chain(sh(&trapping(
        "trap 'echo ignoring' TERM; trap 'echo USR1' USR1; trap 'exit 6' USR2",
    ))));
    let sb = Sandbox::new();
    let mut run = sb.spawn(sh(&trapping("trap 'echo ignoring' TERM")));
    assert_eq!(never.line(), "ready");
    assert_eq!(run.line(), "ready");
    // `never` first: had it a timeout of 10 s, it would be killed before `run`.
    never.signal(Signal::SIGTERM);
    assert_eq!(never.line(), "ignoring");
    let sent = Instant::now();
    run.signal(Signal::SIGTERM);
    assert_eq!(run.line(), "ignoring");
    let out = run.finish();
    assert!(sent.elapsed().as_secs() >= 10, "killed before 10 s");
    assert_eq!(code(&out), 137, "{out:?}");
    sb.assert_clean();
    // Past the default, `never` still runs and answers signals.
    never.signal(Signal::SIGUSR1);
    assert_eq!(never.line(), "USR1");
    never.signal(Signal::SIGUSR2);
    never_sb.ends(never, 6);
}

/// The fault signals' numbers, which `nix::Signal` names.
const FAULTS: [Signal; 6] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

#[test]
fn a_fault_signal_sent_to_psdock_stops_the_run_as_sigterm_does() {
    let sb = Sandbox::new();
    // Without a handler: the PID-1 rule, as for SIGTERM.
    for sig in FAULTS {
        let run = sb.spawn(["sleep", "1000"]);
        run.init();
        run.signal(sig);
        let out = run.finish();
        assert_eq!(code(&out), 143, "{sig}: {out:?}");
        assert!(out.stderr.is_empty(), "{sig}: {out:?}");
        sb.assert_clean();
    }
    // With one: the command gets SIGTERM, also from sigqueue (SI_QUEUE).
    let mut run = sb.spawn(sh(&trapping("trap 'echo got TERM; exit 3' TERM")));
    assert_eq!(run.line(), "ready");
    // SAFETY: sigqueue(3) of our own child, with a plain value.
    let value = libc::sigval {
        sival_ptr: std::ptr::null_mut(),
    };
    assert_eq!(unsafe { libc::sigqueue(run.pid(), libc::SIGBUS, value) }, 0);
    assert_eq!(run.line(), "got TERM");
    sb.ends(run, 3);
}

#[test]
fn sigttou_and_sigttin_do_not_stop_psdock_nor_reach_the_command() {
    let sb = Sandbox::new();
    let mut run = sb.spawn(sh(&trapping("trap 'echo USR1' USR1; trap 'exit 4' TERM")));
    assert_eq!(run.line(), "ready");
    run.signal(Signal::SIGTTOU);
    run.signal(Signal::SIGTTIN);
    // A stopped psdock would hold this USR1 instead of forwarding it.
    run.signal(Signal::SIGUSR1);
    assert_eq!(run.line(), "USR1");
    assert!(!field(&status(run.pid()).unwrap(), "State").starts_with('T'));
    // The command's own dispositions are the defaults.
    let st = status(run.init()).unwrap();
    assert!(!mask_has(&st, "SigIgn", Signal::SIGTTOU) && !mask_has(&st, "SigIgn", Signal::SIGTTIN));
    run.signal(Signal::SIGTERM);
    sb.ends(run, 4);
}

#[test]
fn sigterm_during_set_up_ends_psdock_before_the_command_runs() {
    stopped_during_set_up(Signal::SIGTERM);
}

#[test]
fn a_fault_signal_sent_during_set_up_ends_psdock_as_sigterm_does() {
    for sig in FAULTS {
        stopped_during_set_up(sig);
    }
}

/// `sig`, sent while psdock reads its flags, ends it as SIGTERM does, before
/// the command runs.
fn stopped_during_set_up(sig: Signal) {
    let sb = Sandbox::new();
    let fifo = sb.fifo("env");
    let mut cmd = sb.psdock();
    cmd.arg("-env-file")
        .arg(&fifo)
        .args(sh("trap 'echo got TERM; exit 3' TERM; echo ran"));
    let run = Running::start(&mut cmd);
    // psdock is now blocked in validation, its signals already blocked.
    run.wait_fifo_open();
    run.signal(sig);
    wait_for("the signal to be pending", || {
        mask_has(&status(run.pid())?, "ShdPnd", sig).then_some(())
    });
    std::fs::write(&fifo, "A=1\n").unwrap();
    let out = run.finish();
    assert_eq!(
        (out.status.code(), stdout(&out), stderr(&out)),
        (
            Some(143),
            String::new(),
            "psdock: stopped by SIGTERM before the command started\n".to_owned()
        ),
        "{sig}"
    );
    sb.assert_clean();
}

#[test]
fn when_the_init_exits_its_background_children_die_and_psdock_exits() {
    let sb = Sandbox::new();
    // The background sleeps hold psdock's stdout and ignore SIGHUP and SIGTERM:
    // only the end of the PID namespace stops them, and only then does stdout end.
    let script = "trap '' HUP TERM; for i in 1 2 3; do sleep 1000 & done; \
                  while [ \"$(cat /proc/$!/comm)\" != sleep ]; do :; done; echo started";
    let out = sb.run(sh(script));
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "started\n"),
        "{out:?}"
    );
    sb.assert_clean();
}

/// A run started with `-kill-timeout=1` and signalled at `sent` ends by the
/// timeout's SIGKILL (137), not before it, and leaves nothing behind.
fn ends_by_the_kill_timeout(sb: &Sandbox, run: Running, sent: Instant) {
    let out = run.finish();
    assert!(
        sent.elapsed().as_secs_f64() >= 1.0,
        "killed before the timeout"
    );
    assert_eq!(code(&out), 137, "{out:?}");
    sb.assert_clean();
}

/// Sets SIGCHLD to SIG_IGN for the program `cmd` starts, which it inherits:
/// the kernel then reaps children on its own, and a naive wait finds none.
pub fn with_sigchld_ignored(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        })
    }
}

#[test]
fn an_inherited_sigchld_ignore_does_not_lose_the_exit_code() {
    let sb = Sandbox::new();
    let out = output(with_sigchld_ignored(&mut sb.psdock()).args(sh("exit 7")));
    assert_eq!(code(&out), 7, "{out:?}");
    sb.assert_clean();
}
