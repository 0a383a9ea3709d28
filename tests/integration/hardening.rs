//! Secure by default: capabilities, no_new_privs, masked /proc, no leaked
//! descriptors or signal state, death with psdock, and a psdock binary that the
//! container cannot overwrite.

use std::os::unix::process::{CommandExt, ExitStatusExt};

use nix::sys::signal::Signal;

use crate::util::*;

/// Podman's default capability set (docker's without NET_RAW, MKNOD and
/// AUDIT_WRITE), as /proc prints it.
const DEFAULT_CAPS: &str = "00000000800405fb";
const NO_CAPS: &str = "0000000000000000";

/// The command's own /proc/self/status (the command is `cat`, PID 1).
fn status_inside(sb: &Sandbox, flags: &[&str]) -> String {
    let out = sb.run(flags.iter().copied().chain(["cat", "/proc/self/status"]));
    assert_eq!(code(&out), 0, "{out:?}");
    stdout(&out)
}

#[test]
fn capabilities_are_podman_s_default_set_and_none_for_other_users() {
    let sb = Sandbox::new();
    let root = status_inside(&sb, &[]);
    for (f, want) in [
        ("CapInh", NO_CAPS),
        ("CapPrm", DEFAULT_CAPS),
        ("CapEff", DEFAULT_CAPS),
        ("CapBnd", DEFAULT_CAPS),
        ("CapAmb", NO_CAPS),
    ] {
        assert_eq!(field(&root, f), want, "root {f}");
    }
    let user = status_inside(&sb, &["-user", "psdtest"]);
    for (f, want) in [
        ("CapInh", NO_CAPS),
        ("CapPrm", NO_CAPS),
        ("CapEff", NO_CAPS),
        ("CapBnd", DEFAULT_CAPS),
        ("CapAmb", NO_CAPS),
    ] {
        assert_eq!(field(&user, f), want, "psdtest {f}");
    }
    sb.assert_clean();
}

#[test]
fn cap_add_and_cap_drop_change_the_set_as_in_docker() {
    let sb = Sandbox::new();
    let caps = |flags: &[&str]| {
        let st = status_inside(&sb, flags);
        ["CapPrm", "CapEff", "CapBnd"].map(|f| field(&st, f).to_owned())
    };
    // NET_RAW is bit 13; Go-style and GNU-style spellings, any case, CAP_ or not.
    let with_net_raw = "00000000800425fb";
    assert_eq!(caps(&["-cap-add", "NET_RAW"]), [with_net_raw; 3]);
    assert_eq!(caps(&["--cap-add=cap_net_raw"]), [with_net_raw; 3]);
    assert_eq!(caps(&["-cap-drop", "ALL"]), [NO_CAPS; 3]);
    // CHOWN alone: bit 0.
    let chown = "0000000000000001";
    assert_eq!(caps(&["-cap-drop", "all", "-cap-add", "CHOWN"]), [chown; 3]);
    // Default minus KILL, SETGID and SETUID (bits 5 to 7), plus SYS_ADMIN
    // (bit 21); without SETGID and SETUID, the user is still set up.
    let flags = [
        "-cap-drop",
        "KILL",
        "-cap-drop",
        "CAP_SETUID",
        "-cap-drop",
        "setgid",
    ];
    assert_eq!(
        caps(&[&flags[..], &["-cap-add", "sys_admin"]].concat()),
        ["000000008024051b"; 3]
    );
    // Every capability psdock holds: the test's own, which it inherits.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = field(&own, "CapPrm");
    assert_eq!(caps(&["-cap-add", "ALL"]), [all; 3]);
    // A user other than root still gets none in effect.
    let st = status_inside(&sb, &["-cap-add", "NET_RAW", "-user", "psdtest"]);
    assert_eq!(field(&st, "CapEff"), NO_CAPS);
    assert_eq!(field(&st, "CapBnd"), with_net_raw);
    sb.assert_clean();
}

#[test]
fn no_new_privs_is_set() {
    let sb = Sandbox::new();
    assert_eq!(field(&status_inside(&sb, &[]), "NoNewPrivs"), "1");
    assert_eq!(
        field(&status_inside(&sb, &["-user", "4711"]), "NoNewPrivs"),
        "1"
    );
    sb.assert_clean();
}

#[test]
fn signal_mask_and_dispositions_are_reset_in_the_child() {
    let sb = Sandbox::new();
    for flags in [&[][..], &["-user", "psdtest"]] {
        // psdock itself starts with SIGHUP and signal 33 ignored and SIGUSR2 and
        // SIGRTMIN blocked, on top of its own ignored SIGPIPE and blocked
        // signals: none of it may leak. 32 and 33 are glibc's own, out of reach of
        // its signal(), so any environment may pass them on ignored.
        let mut cmd = sb.psdock();
        cmd.args(flags).args(["cat", "/proc/self/status"]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                psdock::signals::set_disposition(33, libc::SIG_IGN)?;
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigaddset(&mut set, libc::SIGRTMIN());
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let out = output(&mut cmd);
        assert_eq!(code(&out), 0, "{out:?}");
        let st = stdout(&out);
        for f in ["SigBlk", "SigIgn", "SigPnd", "ShdPnd"] {
            assert_eq!(field(&st, f), NO_CAPS, "{flags:?} {f}");
        }
    }
    sb.assert_clean();
}

#[test]
fn no_descriptor_above_2_reaches_the_command() {
    let sb = Sandbox::new();
    for flags in [&[][..], &["-user", "psdtest"]] {
        // `sleep` opens nothing: its descriptors, read from the host, are
        // exactly those psdock let through exec.
        let run = sb.spawn(flags.iter().copied().chain(["sleep", "1000"]));
        let init = run.init();
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{init}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        assert_eq!(fds, ["0", "1", "2"], "{flags:?}");
        run.signal(Signal::SIGTERM);
        assert_eq!(code(&run.finish()), 143);
        sb.assert_clean();
    }
}

#[test]
fn proc_paths_are_masked_or_read_only() {
    let sb = Sandbox::new();
    let script = r#"
        for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do [ -e $f ] && head -c 1 $f | wc -c; done
        for d in /proc/acpi /proc/scsi /sys/firmware; do [ -d $d ] && ls -A $d | wc -l; done
        { echo x > /proc/sys/kernel/hostname; } 2>&1; hostname
        echo --
        cat /proc/self/mountinfo
        echo --
        for d in /proc/acpi /proc/scsi /sys/firmware; do if [ -d $d ]; then mkdir $d/x 2>&1 || true; fi; done
    "#;
    let parts = sb.sections(script);
    // The masked directories share one empty tmpfs: none of them may take a write.
    let writes: Vec<&str> = parts[2].lines().collect();
    assert!(
        !writes.is_empty() && writes.iter().all(|w| w.contains("Read-only file system")),
        "{writes:?}"
    );
    let text = &parts[0];
    let checks: Vec<&str> = text.lines().collect();
    let (sizes, rest) = checks.split_at(checks.len() - 2);
    assert!(
        !sizes.is_empty() && sizes.iter().all(|s| *s == "0"),
        "{text}"
    );
    assert!(rest[0].contains("Read-only file system"), "{text}");
    assert_eq!(rest[1], "psdock");
    let mounts = parse_mountinfo(&parts[1]);
    let mounted = |p: &str| mounts.iter().find(|m| m.point == std::path::Path::new(p));
    // Every path runc masks that this host has is covered in the container (the
    // list is runc's, written out here on purpose rather than taken from the code
    // under test).
    for p in [
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    ] {
        if std::path::Path::new(p).exists() {
            assert!(mounted(p).is_some(), "{p} not masked: {mounts:#?}");
        }
    }
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if std::path::Path::new(p).exists() {
            assert!(
                mounted(p).is_some_and(read_only),
                "{p} not read-only: {mounts:#?}"
            );
        }
    }
    sb.assert_clean();
}

#[test]
fn sigkill_of_psdock_kills_the_container() {
    let sb = Sandbox::new();
    // As root and as another user: PDEATHSIG must survive the user switch.
    // The second run keeps its upper layer on disk, for the reclaim of both.
    for flags in [&[][..], &["-user", "psdtest", "-upper", "disk"]] {
        let run = sb.spawn(
            flags
                .iter()
                .copied()
                .chain(sh("sleep 1000 & exec sleep 999")),
        );
        run.init();
        // psdock and both sleeps.
        let procs = wait_for("both sleeps", || {
            Some(sb.processes()).filter(|p| p.len() == 3)
        });
        run.signal(Signal::SIGKILL);
        let out = run.finish();
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
        for (pid, name) in procs {
            wait_ended(&format!("{name} ({pid}) to die"), pid);
        }
        // What a killed psdock leaves is still mounted (the overlay, and the
        // tmpfs of its upper layer unless it is on disk); the next psdock on
        // the same ROOTFS reclaims it and runs there.
        if flags.is_empty() {
            assert_eq!(sb.mounts(), [sb.sibling(), sb.rootfs()]);
        } else {
            assert_eq!(sb.mounts(), [sb.rootfs()]);
            assert!(sb.upper().is_dir());
        }
        let again = sb.run(sh("test -f /bin/busybox && echo reused"));
        assert_eq!(
            (code(&again), stdout(&again).as_str()),
            (0, "reused\n"),
            "{again:?}"
        );
        sb.assert_clean();
    }
}

#[test]
fn the_container_cannot_write_psdock_s_binary_through_proc_exe() {
    let sb = Sandbox::new();
    let copy = sb.path("psdock-copy");
    std::fs::copy(psdock(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let image = sb.image_copy("img");
    let image_before = tree_snapshot(&image);
    // Writing through its own exe may well succeed: that only changes the
    // container's copy of busybox. Hence no command after the loop.
    let script = "for f in /proc/[0-9]*/exe /proc/self/exe /proc/1/exe; do \
                    echo pwned >> $f; cat /bin/busybox > $f; : > $f; \
                  done 2>/dev/null";
    let mut cmd = std::process::Command::new(&copy);
    sb.mark_command(&mut cmd);
    cmd.arg("-i")
        .arg(&image)
        .arg("-r")
        .arg(sb.rootfs())
        .arg("-e")
        .arg(sb.mark());
    let out = output(cmd.args(sh(script)));
    assert!(out.status.code().is_some(), "{out:?}");
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "psdock's binary was changed"
    );
    assert_eq!(tree_snapshot(&image), image_before, "the image was changed");
    sb.assert_clean();
}
