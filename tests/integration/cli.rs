//! The command line as the original accepted it: every spelling of a flag,
//! `-flag=value`, last wins, and where the command starts.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::records::{self, start};
use crate::util::*;

#[test]
fn runs_a_command_and_passes_its_exit_code_through() {
    let sb = Sandbox::new();
    let out = sb.run(sh("echo hello from $(hostname); exit 7"));
    assert_eq!(stdout(&out), "hello from psdock\n");
    assert_eq!(code(&out), 7);
    sb.assert_clean();
}

#[test]
fn a_multi_letter_single_dash_typo_is_an_error_naming_it() {
    let sb = Sandbox::new();
    let out = output(
        sb.bare()
            .args(["-imagee", "x", "-r"])
            .arg(sb.rootfs())
            .arg("true"),
    );
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "psdock: unknown flag -imagee\n");
    sb.assert_clean();
}

#[test]
fn image_and_rootfs_flags_in_every_spelling() {
    let sb = Sandbox::new();
    let img = image().to_str().unwrap();
    let root = sb.rootfs();
    let root = root.to_str().unwrap();
    let forms: [(&str, &str); 6] = [
        ("-image", "-rootfs"),
        ("--image", "--rootfs"),
        ("-i", "-r"),
        ("--i", "--r"),
        ("-image=", "-rootfs="),
        ("--i=", "--r="),
    ];
    for (i, r) in forms {
        let mut cmd = sb.bare();
        if let Some(i) = i.strip_suffix('=') {
            cmd.arg(format!("{i}={img}"))
                .arg(format!("{}={root}", r.trim_end_matches('=')));
        } else {
            cmd.args([i, img, r, root]);
        }
        let out = output(cmd.args(sh("echo $$ > /proof; cat /proof")));
        assert_eq!(
            (code(&out), stdout(&out).as_str()),
            (0, "1\n"),
            "{i} {r}: {out:?}"
        );
        sb.assert_clean();
    }
}

#[test]
fn every_other_flag_accepts_its_go_style_spellings() {
    let sb = Sandbox::new();
    let env_file = sb.path("env");
    std::fs::write(&env_file, "FROM_FILE=yes\n").unwrap();
    let src = sb.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "bound\n").unwrap();
    let src = src.to_str().unwrap();
    let env_file = env_file.to_str().unwrap();
    let script = "echo $A $FROM_FILE $(hostname) $(id -u) $(pwd) $(cat /data/f)";
    for flags in [
        vec![
            "-e".to_owned(),
            "A=1".into(),
            "-env-file".into(),
            env_file.into(),
            "-hostname".into(),
            "h1".into(),
            "-user".into(),
            "psdtest".into(),
            "-cwd".into(),
            "/tmp".into(),
            "-v".into(),
            format!("{src}:/data"),
            "-kill-timeout".into(),
            "5".into(),
        ],
        vec![
            "--env=A=1".into(),
            "--env-file".into(),
            env_file.into(),
            "--hostname=h1".into(),
            "--user".into(),
            "psdtest".into(),
            "--cwd=/tmp".into(),
            "--bind-mount".into(),
            format!("{src}:/data:ro"),
            "--kill-timeout=5".into(),
        ],
        vec![
            "-env=A=1".into(),
            "-env-file=".to_owned() + env_file,
            "--hostname".into(),
            "h1".into(),
            "-user=psdtest".into(),
            "-cwd".into(),
            "/tmp".into(),
            format!("-bind-mount={src}:/data:rw"),
            "--kill-timeout".into(),
            "5".into(),
        ],
    ] {
        let out = sb.run(flags.iter().map(String::as_str).chain(sh(script)));
        assert_eq!(
            (code(&out), stdout(&out).as_str()),
            (0, "1 yes h1 4711 /tmp bound\n"),
            "{flags:?}: {}",
            stderr(&out)
        );
    }
    sb.assert_clean();
}

#[test]
fn repeated_single_value_flags_last_wins() {
    let sb = Sandbox::new();
    let missing = sb.path("no-such-image");
    let out = output(
        sb.bare()
            .arg("-i")
            .arg(&missing)
            .arg("-i")
            .arg(image())
            .arg("-r")
            .arg(sb.path("first"))
            .arg("-r")
            .arg(sb.rootfs())
            .args([
                "-hostname",
                "one",
                "-hostname",
                "two",
                "-cwd",
                "/etc",
                "-cwd",
                "/bin",
            ])
            .args(["-user", "app", "-user", "psdtest"])
            .args(sh("echo $(hostname) $(pwd) $(id -un)")),
    );
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "two /bin psdtest\n"),
        "{out:?}"
    );
    assert!(
        !sb.path("first").exists(),
        "the overridden rootfs was created"
    );
    sb.assert_clean();
}

#[test]
fn everything_after_the_first_word_belongs_to_the_command() {
    let sb = Sandbox::new();
    // `-l` goes to ls, not to psdock (which has no such flag and would fail).
    let out = sb.run(["ls", "-l", "-d", "/etc"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("drwx"), "{out:?}");
    // psdock's own flag names after the command are the command's words.
    let out = sb.run(["echo", "-i", "x", "--image", "-r", "-hostname=no"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "-i x --image -r -hostname=no\n")
    );
    sb.assert_clean();
}

#[test]
fn a_double_dash_ends_the_flags() {
    let sb = Sandbox::new();
    let out = sb.run([
        "-hostname",
        "dd",
        "--",
        "sh",
        "-c",
        "echo $(hostname) \"$@\"",
        "sh",
        "--",
        "-x",
    ]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "dd -- -x\n"),
        "{out:?}"
    );
    // A command that looks like a flag, made possible by `--`: run as a command.
    let out = sb.run(["--", "-hostname"]);
    assert_eq!(code(&out), 127, "{out:?}");
    assert_eq!(stderr(&out), "psdock: -hostname: command not found\n");
    sb.assert_clean();
}

fn exec_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_psdock-exec"))
}

#[test]
fn psdock_exec_names_its_own_usage() {
    let sb = Sandbox::new();
    let mut c = start(&sb, {
        let mut cmd = sb.psdock();
        cmd.args(["sleep", "1000"]);
        cmd
    });
    let usage = "(usage: psdock-exec ID [OPTIONS] COMMAND [ARGS...])";
    for (args, line) in [
        (vec![], format!("psdock-exec: missing ID {usage}\n")),
        (
            vec![c.id()],
            format!("psdock-exec: no command given {usage}\n"),
        ),
        (
            vec![c.id(), "-user"],
            "psdock-exec: -user needs a value\n".to_owned(),
        ),
    ] {
        let out = output(
            exec_bin()
                .env("PSDOCK_STATE_DIR", sb.state_dir())
                .args(&args),
        );
        assert_eq!((code(&out), stderr(&out)), (125, line), "{args:?}");
    }
    assert_eq!(c.stop(), 143);
    sb.assert_clean();
}

/// `cmd` as uid and gid 65534 (nobody); std drops root's supplementary groups.
fn as_nobody(cmd: &mut Command) -> std::process::Output {
    output(cmd.uid(65534).gid(65534))
}

#[test]
fn as_non_root_every_tool_says_it_must_run_as_root_and_touches_nothing() {
    let sb = Sandbox::new();
    let out = as_nobody(sb.psdock().arg("true"));
    assert_eq!(
        (code(&out), stderr(&out)),
        (125, "psdock: must run as root\n".to_owned())
    );
    sb.assert_clean();
    assert!(!sb.state_dir().exists(), "the state directory was made");

    // A running container, which a non-root user can neither enter nor prune.
    let c = start(&sb, {
        let mut cmd = sb.psdock();
        cmd.args(["sleep", "1000"]);
        cmd
    });
    let out = as_nobody(
        exec_bin()
            .env("PSDOCK_STATE_DIR", sb.state_dir())
            .args([c.id(), "true"]),
    );
    assert_eq!(
        (code(&out), stderr(&out)),
        (125, "psdock-exec: must run as root\n".to_owned())
    );
    for args in [&["--prune"][..], &[]] {
        let out = as_nobody(
            Command::new(records::ls_bin())
                .env("PSDOCK_STATE_DIR", sb.state_dir())
                .args(args),
        );
        assert_eq!(
            (code(&out), stderr(&out)),
            (125, "psdock-ls: must run as root\n".to_owned()),
            "{args:?}"
        );
    }
    let rows = records::ls_json(&sb, false);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"].as_str(), Some(c.id()));
    drop(c);
    sb.assert_clean();
}
