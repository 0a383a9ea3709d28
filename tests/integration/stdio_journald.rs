//! The journald sink against a real systemd-journald, started by each test
//! in a private mount namespace (tmpfs on /run/systemd, its volatile journal
//! in the test's directory), read back with `journalctl -o json`. The host's
//! journal, if any, is never touched.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Output};

use serde_json::Value;

use crate::util::*;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A journald of the test's own, in a mount namespace psdock is run in.
struct Journald {
    child: Child,
    dir: PathBuf,
}

/// Runs `setup` in a new private mount namespace, then `cmd` in it.
pub fn in_namespace(setup: &str, cmd: &Command) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped
        .args(["-m", "--propagation", "private", "sh", "-ec"])
        .arg(format!("{setup}\nexec \"$@\""))
        .arg("sh");
    then(wrapped, cmd)
}

/// `outer` with `cmd`'s program, arguments and environment appended: `cmd`
/// run by a wrapper that execs it.
fn then(mut outer: Command, cmd: &Command) -> Command {
    outer.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            outer.env(k, v);
        }
    }
    outer
}

impl Journald {
    fn start(sb: &Sandbox) -> Journald {
        let dir = sb.path("journal");
        std::fs::create_dir(&dir).unwrap();
        // journald says READY=1 here once its sockets are open.
        let notify_path = sb.path("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(DEADLINE)).unwrap();
        let setup = format!(
            "mount -t tmpfs psdock-test /run/systemd
             mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
             printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nForwardToSyslog=no\\n' \
                 > /run/systemd/journald.conf.d/test.conf
             mount --bind {} /run/log",
            dir.display()
        );
        let child = in_namespace(&setup, &Command::new(JOURNALD))
            .env("NOTIFY_SOCKET", &notify_path)
            .spawn()
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = notify.recv(&mut buf).expect("journald did not get ready");
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                break;
            }
        }
        Journald { child, dir }
    }

    /// `cmd` run in journald's mount namespace.
    fn enter(&self, cmd: &Command) -> Command {
        let mut nsenter = Command::new("nsenter");
        nsenter.args(["-m", "-t", &self.child.id().to_string(), "--"]);
        then(nsenter, cmd)
    }

    /// The entries psdock sent (by the native protocol), after journald
    /// wrote all it had; `matches` as journalctl takes them.
    fn entries(&self, matches: &[&str]) -> Vec<Value> {
        let sync = self
            .enter(Command::new("journalctl").arg("--sync"))
            .output()
            .unwrap();
        assert!(sync.status.success(), "{sync:?}");
        let out = Command::new("journalctl")
            .arg("--directory")
            .arg(self.journal_dir())
            .args(["-o", "json", "--all", "_TRANSPORT=journal"])
            .args(matches)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn journal_dir(&self) -> PathBuf {
        let machine = std::fs::read_to_string("/etc/machine-id").unwrap();
        self.dir.join("journal").join(machine.trim())
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(j: &Journald, sb: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = sb.psdock();
    cmd.args(args);
    output(&mut j.enter(&cmd))
}

fn text<'a>(e: &'a Value, field: &str) -> &'a str {
    e[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {e}"))
}

#[test]
fn one_entry_per_line_with_priority_prefix_and_docker_fields() {
    let sb = Sandbox::new();
    let j = Journald::start(&sb);
    let out = run(
        &j,
        &sb,
        &[
            "-stdio",
            "journald://",
            "-stdout-prefix",
            "[web] ",
            "-hostname",
            "web1",
            "sh",
            "-c",
            "echo one; echo two >&2; echo; printf 'no newline'",
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "", "nothing reaches psdock's own stdout");
    let entries = j.entries(&["SYSLOG_IDENTIFIER=sh"]);
    let mut got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (text(e, "PRIORITY"), text(e, "MESSAGE")))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("3", "[web] two"),
            ("6", "[web] "),
            ("6", "[web] no newline"),
            ("6", "[web] one"),
        ]
    );
    let id = text(&entries[0], "CONTAINER_ID");
    assert!(id.starts_with("psdock_") && id.len() == 14, "{id}");
    for e in &entries {
        assert_eq!(text(e, "CONTAINER_ID"), id);
        assert_eq!(text(e, "CONTAINER_NAME"), "web1");
        assert_eq!(text(e, "PSDOCK_IMAGE"), image().to_str().unwrap());
    }
    // As with docker's journald driver, the container's id finds its lines.
    assert_eq!(j.entries(&[&format!("CONTAINER_ID={id}")]).len(), 4);
    sb.assert_clean();
}

#[test]
fn the_tag_option_names_the_identifier() {
    let sb = Sandbox::new();
    let j = Journald::start(&sb);
    let out = run(
        &j,
        &sb,
        &["-stdio", "journald://?tag=my-app", "echo", "tagged"],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    let entries = j.entries(&["SYSLOG_IDENTIFIER=my-app"]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(text(&entries[0], "MESSAGE"), "tagged");
}

#[test]
fn a_line_too_large_for_a_datagram_is_one_entry() {
    let sb = Sandbox::new();
    let j = Journald::start(&sb);
    // Larger than a datagram may be (the socket's send buffer, ~208 KiB):
    // only the memfd way carries it whole.
    let out = run(
        &j,
        &sb,
        &[
            "-stdio",
            "journald://?tag=big",
            "sh",
            "-c",
            "head -c 300000 /dev/zero | tr '\\0' x; echo; echo after",
        ],
    );
    assert_eq!(code(&out), 0, "{out:?}");
    let entries = j.entries(&["SYSLOG_IDENTIFIER=big"]);
    let messages: Vec<&str> = entries.iter().map(|e| text(e, "MESSAGE")).collect();
    assert_eq!(
        messages.len(),
        2,
        "{:?}",
        messages.iter().map(|m| m.len()).collect::<Vec<_>>()
    );
    assert_eq!(messages[0], "x".repeat(300_000));
    assert_eq!(messages[1], "after");
}

#[test]
fn no_journald_is_refused_before_the_container_starts() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    cmd.args(["-stdio", "journald://", "true"]);
    let out = output(&mut in_namespace(
        "mount -t tmpfs psdock-test /run/systemd",
        &cmd,
    ));
    assert_eq!(code(&out), 125, "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("-stdio journald://: no journald listening on /run/systemd/journal/socket"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    sb.assert_clean();
}

#[test]
fn a_stopped_journald_holds_the_command() {
    let sb = Sandbox::new();
    let j = Journald::start(&sb);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(j.child.id() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    // 2 MB: more than journald's socket queue and psdock's pipe hold, so the
    // command can only finish once journald takes entries again.
    let mut cmd = sb.psdock();
    cmd.args([
        "-stdio",
        "journald://?tag=held",
        "sh",
        "-c",
        "pad=$(head -c 100 /dev/zero | tr '\\0' .)
         i=0; while [ $i -lt 20000 ]; do echo $pad line $i; i=$((i+1)); done",
    ]);
    let run = Running::start(&mut j.enter(&cmd));
    // The command ends up asleep in a write to its full pipe.
    wait_for("the command to block on its output", || {
        sb.processes().into_iter().find(|(pid, name)| {
            name == "sh"
                && std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                    .is_ok_and(|w| w.ends_with("pipe_write") || w == "pipe_wait_writable")
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(j.child.id() as i32),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let out = run.finish();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let entries = j.entries(&["SYSLOG_IDENTIFIER=held"]);
    assert_eq!(entries.len(), 20000);
    assert!(text(&entries[19999], "MESSAGE").ends_with(". line 19999"));
}
