//! The container itself: namespaces, PID 1, the system mounts, and every exit code.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

#[test]
fn the_command_is_pid_1_in_new_namespaces_on_the_host_network() {
    let sb = Sandbox::new();
    let out = sb.run(sh(
        "echo $$; for n in mnt pid uts ipc net; do readlink /proc/self/ns/$n; done",
    ));
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("1"));
    for ns in ["mnt", "pid", "uts", "ipc", "net"] {
        let inside = lines.next().unwrap();
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let same = inside == host.to_str().unwrap();
        assert_eq!(
            same,
            ns == "net",
            "{ns}: inside {inside}, host {}",
            host.display()
        );
    }
    sb.assert_clean();
}

#[test]
fn system_mounts_dev_nodes_and_resolv_conf() {
    let sb = Sandbox::new();
    let script = r#"
        for n in null zero full random urandom tty ptmx fd stdin stdout stderr; do [ -e /dev/$n ] && echo $n; done
        echo --
        head -c 4 /dev/zero | wc -c
        touch /sys/x 2>&1; { echo x > /etc/resolv.conf; } 2>&1
        echo --
        cat /etc/resolv.conf
        echo --
        cat /proc/self/mountinfo
    "#;
    let parts = sb.sections(script);
    assert_eq!(
        parts[0].lines().collect::<Vec<_>>(),
        [
            "null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout",
            "stderr"
        ]
    );
    let checks: Vec<&str> = parts[1].lines().collect();
    assert_eq!(checks[0], "4");
    assert!(checks[1].contains("Read-only file system"), "{checks:?}");
    assert!(checks[2].contains("Read-only file system"), "{checks:?}");
    assert_eq!(
        parts[2],
        std::fs::read_to_string("/etc/resolv.conf").unwrap()
    );
    let mounts = parse_mountinfo(&parts[3]);
    let find = |at: &str| {
        mounts
            .iter()
            .find(|m| m.point == std::path::Path::new(at))
            .unwrap_or_else(|| panic!("no {at}: {mounts:#?}"))
    };
    for (at, fstype, ro) in [
        ("/", "overlay", false),
        ("/proc", "proc", false),
        ("/dev", "tmpfs", false),
        ("/dev/pts", "devpts", false),
        ("/dev/shm", "tmpfs", false),
        ("/dev/mqueue", "mqueue", false),
        ("/sys", "sysfs", true),
        ("/etc/resolv.conf", "", true),
    ] {
        let m = find(at);
        assert!(fstype.is_empty() || m.fstype == fstype, "{m:?}");
        assert_eq!(read_only(m), ro, "{m:?}");
    }
    sb.assert_clean();
}

#[test]
fn exit_codes_of_the_command_pass_through() {
    let sb = Sandbox::new();
    for n in [0, 1, 2, 42, 124, 125, 126, 127, 128, 255] {
        let out = sb.run(["sh", "-c", &format!("exit {n}")]);
        assert_eq!(code(&out), n, "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
    }
    sb.assert_clean();
}

#[test]
fn a_command_killed_by_a_signal_gives_128_plus_the_signal() {
    let sb = Sandbox::new();
    let run = sb.spawn(["sleep", "1000"]);
    // Only SIGKILL reaches a PID 1 without handlers, even from the host.
    kill(Pid::from_raw(run.init()), Signal::SIGKILL).unwrap();
    let out = run.finish();
    assert_eq!(code(&out), 137, "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    sb.assert_clean();
}

#[test]
fn a_command_that_is_not_found_gives_127() {
    let sb = Sandbox::new();
    for cmd in [
        "no-such-command",
        "/bin/no-such-command",
        "/no/such/dir/cmd",
    ] {
        let out = sb.run([cmd]);
        assert_eq!(code(&out), 127, "{out:?}");
        assert_eq!(stderr(&out), format!("psdock: {cmd}: command not found\n"));
        sb.assert_clean();
    }
    // Looked up in the container's PATH, not psdock's: the host has `apt-get`.
    let out = sb.run(["apt-get"]);
    assert_eq!(code(&out), 127, "{out:?}");
    let out = sb.run(["-e", "PATH=/nowhere", "sh"]);
    assert_eq!(code(&out), 127, "{out:?}");
    sb.assert_clean();
}

#[test]
fn a_command_that_cannot_be_executed_gives_126() {
    let sb = Sandbox::new();
    for cmd in ["/etc/passwd", "/etc", "/tmp"] {
        let out = sb.run([cmd]);
        assert_eq!(code(&out), 126, "{out:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("psdock: {cmd}: cannot execute: "))
                && err.matches('\n').count() == 1,
            "{err}"
        );
        sb.assert_clean();
    }
    // Not executable for the user it runs as.
    let out = sb.run(["-user", "psdtest", "/root/x"]);
    assert_eq!(code(&out), 126, "{out:?}");
    assert_eq!(
        stderr(&out),
        "psdock: /root/x: cannot execute: Permission denied\n"
    );
    sb.assert_clean();
}
