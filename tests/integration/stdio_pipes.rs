//! The inherit sink off a terminal (pipes), the prefix, and bad stdio flags.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;

use crate::util::*;

#[test]
fn piped_stdin_reaches_the_command_and_stdout_and_stderr_stay_apart() {
    let sb = Sandbox::new();
    let mut child = sb
        .psdock()
        .args([
            "sh",
            "-c",
            "read x; echo \"got $x\"; echo oops >&2; tty || true",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "got hello\nnot a tty\n");
    assert_eq!(stderr(&out), "oops\n");
    sb.assert_clean();
}

#[test]
fn a_closed_stdin_reads_as_empty_not_as_a_file_psdock_opened() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["sh", "-c", "wc -c; echo end"]);
    // SAFETY: close(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            (libc::close(0) == 0)
                .then_some(())
                .ok_or_else(std::io::Error::last_os_error)
        })
    };
    let out = output(&mut cmd);
    assert_eq!(stderr(&out), "");
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "end"]
    );
    sb.assert_clean();
}

#[test]
fn a_reader_that_goes_away_ends_the_run_without_killing_psdock_halfway() {
    let sb = Sandbox::new();
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    // With a prefix psdock writes the output itself, into the pipe nobody reads.
    let out = sb
        .psdock()
        .args(["-stdout-prefix", "p ", "sh", "-c"])
        .arg("i=0; while [ $i -lt 100000 ]; do echo x; i=$((i+1)); done")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), None, "{out:?}");
    sb.assert_clean();
}

// With no terminal, the reader of psdock's output going away is the hang-up:
// SIGHUP to the command, which as PID 1 without a handler psdock ends (129).
#[test]
fn a_reader_that_goes_away_hangs_the_command_up() {
    use std::io::Read;
    let sb = Sandbox::new();
    // Close-on-exec: psdock, or another test's process, holding the read end
    // would keep the reader there.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut psdock = sb
        .psdock()
        .args(["-stdout-prefix", "p ", "sh", "-c"])
        .arg("echo ready; while :; do echo more; sleep 0.05; done")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .spawn()
        .unwrap();
    let mut reader = std::fs::File::from(read);
    let mut got = [0u8; 8];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"p ready\n");
    drop(reader);
    let status = wait_for("psdock to exit", || psdock.try_wait().unwrap());
    assert_eq!(status.code(), Some(129), "{status:?}");
    sb.assert_clean();
}

#[test]
fn every_line_gets_one_prefix_however_it_is_written() {
    let sb = Sandbox::new();
    let out = sb.run([
        "-stdout-prefix",
        "[p] ",
        "sh",
        "-c",
        "printf 'a\\nb\\n'; printf 'spl'; sleep 0.1; printf 'it\\n'; printf '\\n'; echo e >&2; printf 'last'",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "[p] a\n[p] b\n[p] split\n[p] \n[p] last");
    assert_eq!(stderr(&out), "[p] e\n");
    sb.assert_clean();
}

#[test]
fn a_prefix_colour_is_bold_and_reset_and_no_color_turns_it_off() {
    let sb = Sandbox::new();
    let out = sb.run(["-stdout-prefix", "web:green", "echo", "hi"]);
    assert_eq!(stdout(&out), "\x1b[1;32mweb\x1b[0mhi\n");
    let out = sb
        .psdock()
        .env("NO_COLOR", "1")
        .args(["-stdout-prefix", "web:green", "echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "webhi\n");
    let out = sb.run(["-stdout-prefix", "web:8080 ", "echo", "hi"]);
    assert_eq!(stdout(&out), "web:8080 hi\n");
    sb.assert_clean();
}

#[test]
fn bad_stdio_flags_are_125_naming_them_and_leave_nothing() {
    let sb = Sandbox::new();
    for (args, message) in [
        (&["-stdio", "ftp://x"][..], "psdock: -stdio ftp://x: unknown stdio implementation `ftp` (this build has: file, inherit, journald, syslog, syslog+tcp, syslog+tls, syslog+udp, tcp, tls)\n"),
        (&["-stdio", "/var/log/x"], "psdock: -stdio /var/log/x: expected SCHEME://TARGET (file:///path, tcp://host:port, tls://host:port)\n"),
        (&["-stdout-prefix", "web:purple"], "psdock: -stdout-prefix web:purple: unknown colour `purple` (known: white, green, blue, magenta, yellow, cyan, red)\n"),
        (&["-log-rotate", "1"], "psdock: -log-rotate is not supported by -stdio inherit\n"),
        (&["-stdio", "tcp://127.0.0.1:9", "-log-rotate", "1h"], "psdock: -log-rotate is not supported by -stdio tcp://127.0.0.1:9\n"),
        (&["-stdio", "file:///tmp/x.log", "-log-rotate", "soon"], "psdock: -log-rotate soon: expected a positive number of hours, or a duration such as 30m, 10s or 1d\n"),
        (&["-stdio", "file:///tmp/x.log", "-log-keep", "3"], "psdock: -log-keep needs -log-rotate\n"),
        (&["-stdio", "file:///tmp/x.log", "-tls-ca", "/etc/hostname"], "psdock: -tls-ca is not supported by -stdio file:///tmp/x.log\n"),
        (&["-stdio", "tls://127.0.0.1:9", "-tls-cert", "/etc/hostname"], "psdock: -tls-cert and -tls-key go together\n"),
        (&["-stdio", "tcp://127.0.0.1:0"], "psdock: -stdio tcp://127.0.0.1:0: bad port `0`\n"),
    ] {
        let out = sb.run(args.iter().copied().chain(["true"]));
        assert_eq!(code(&out), 125, "{args:?}");
        assert_eq!(stderr(&out), message, "{args:?}");
        sb.assert_clean();
    }
}

/// A character device epoll refuses, as one of psdock's own outputs: what
/// cron, systemd and `>/dev/null` hand over.
fn device(path: &str) -> Stdio {
    Stdio::from(std::fs::OpenOptions::new().write(true).open(path).unwrap())
}

#[test]
fn output_on_dev_null_or_zero_keeps_the_commands_exit_code_with_or_without_a_prefix() {
    let sb = Sandbox::new();
    for (dev, prefix) in ["/dev/null", "/dev/zero"]
        .into_iter()
        .flat_map(|dev| [(dev, &[][..]), (dev, &["-stdout-prefix", "p "])])
    {
        let p = if prefix.is_empty() { "" } else { "p " };
        // stdout, stderr, both (as under cron): an output that is still a
        // pipe shows the command's lines and any message of psdock's.
        for (out_null, err_null) in [(true, false), (false, true), (true, true)] {
            let mut cmd = sb.psdock();
            cmd.args(prefix)
                .args(["sh", "-c", "echo out; echo err >&2; exit 7"])
                .stdin(Stdio::null());
            if out_null {
                cmd.stdout(device(dev));
            }
            if err_null {
                cmd.stderr(device(dev));
            }
            let out = cmd.output().unwrap();
            let what = format!("{dev} {prefix:?} stdout on it {out_null}, stderr on it {err_null}");
            assert_eq!(code(&out), 7, "{what}: {out:?}");
            let expect = |null, line| {
                if null {
                    String::new()
                } else {
                    format!("{p}{line}\n")
                }
            };
            assert_eq!(stdout(&out), expect(out_null, "out"), "{what}");
            assert_eq!(stderr(&out), expect(err_null, "err"), "{what}");
            sb.assert_clean();
        }
    }
}

#[test]
fn output_into_regular_files_gets_every_line_prefixed_and_the_exit_code() {
    let sb = Sandbox::new();
    // Enough lines to take many reads, on both streams.
    let script = "seq 1 20000; seq 1 3000 >&2; printf tail; exit 3";
    for (i, prefix) in [&[][..], &["-stdout-prefix", "p "]].into_iter().enumerate() {
        let p = if prefix.is_empty() { "" } else { "p " };
        let out_path = sb.path(&format!("out{i}.log"));
        let err_path = sb.path(&format!("err{i}.log"));
        let status = sb
            .psdock()
            .args(prefix)
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            Some(3),
            "{prefix:?}: {:?}",
            std::fs::read_to_string(&err_path)
        );
        let lines = |n| (1..=n).map(|k| format!("{p}{k}\n")).collect::<String>();
        assert_eq!(
            std::fs::read_to_string(&out_path).unwrap(),
            lines(20000) + p + "tail",
            "{prefix:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&err_path).unwrap(),
            lines(3000),
            "{prefix:?}"
        );
        sb.assert_clean();
    }
}

// With a prefix psdock writes the output itself: an output it cannot write
// to (a full disk, here /dev/full) is named as what failed, psdock's stdout,
// not a -stdio that was never given; and the command is hung up (129).
#[test]
fn an_output_psdock_cannot_write_is_named_as_psdocks_stdout() {
    let sb = Sandbox::new();
    let out = sb
        .psdock()
        .args(["-stdout-prefix", "p ", "sh", "-c"])
        .arg("echo out; while :; do sleep 1; done")
        .stdin(Stdio::null())
        .stdout(device("/dev/full"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 129, "{out:?}");
    assert_eq!(
        stderr(&out),
        "psdock: psdock's stdout: No space left on device\n"
    );
    sb.assert_clean();
}
