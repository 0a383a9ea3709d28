//! Hole 6, no system-call filter: a container reaches host root's kernel
//! keyring, makes user namespaces, and uses io_uring, bpf, perf_event_open,
//! userfaultfd and VSOCK, all large kernel surfaces shared with the host.
//! The attacker is a static probe (syscall_probe.rs) that makes the raw call
//! and prints the errno: each refused call must fail with EPERM, and the
//! probe must live on to say so (never killed by the filter). Each refusal
//! is shown to be the filter's by the same call going through under
//! `-seccomp unconfined`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::records::{start, Running};
use crate::util::*;

/// The probe, compiled statically (the image has no C library) once per
/// version of its source.
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| static_program("tests/integration/hostile/syscall_probe.rs"))
}

/// A copy of the test image with the probe at /bin/probe.
fn image(sb: &Sandbox) -> PathBuf {
    let image = sb.image_copy("image");
    std::fs::copy(probe(), image.join("bin/probe")).unwrap();
    image
}

/// Runs `probe CALL` for each call in one container and returns each one's
/// answer (`ok N` or `errno N`); the container must end normally, so a
/// probe killed by the filter fails the test.
fn answers(sb: &Sandbox, image: &Path, flags: &[&str], calls: &[&str]) -> Vec<String> {
    let script: String = calls
        .iter()
        .map(|c| format!("probe {c} || exit 99; "))
        .collect();
    let out = output(sb.psdock_with(image).args(flags).args(sh(&script)));
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    let got: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(got.len(), calls.len(), "{text}");
    got
}

const EPERM: &str = "errno 1";

/// Calls the kernel would let container root make, that the filter refuses.
const REFUSED: &[&str] = &[
    "keyctl",
    "unshare-user",
    "clone-user",
    "io_uring_setup",
    "perf_event_open",
    "userfaultfd",
    "socket-vsock",
    "personality 400000",
];

#[test]
fn kernel_surfaces_are_refused_with_eperm_and_the_prober_lives_on() {
    let sb = Sandbox::new();
    let image = image(&sb);
    let filtered = answers(&sb, &image, &[], REFUSED);
    let unconfined = answers(&sb, &image, &["-seccomp", "unconfined"], REFUSED);
    for ((call, f), u) in REFUSED.iter().zip(&filtered).zip(&unconfined) {
        assert_eq!(f, EPERM, "{call} with the default filter");
        assert_ne!(u, EPERM, "{call} unconfined: the kernel itself refused it");
    }
    // The same with an explicit `-seccomp default`, and for calls the
    // kernel refuses anyway (bpf without CAP_BPF) and that the filter must
    // not break (a Unix socket, the plain Linux persona).
    let calls = ["keyctl", "bpf", "socket-unix", "personality 0", "clone3"];
    let got = answers(&sb, &image, &["-seccomp", "default"], &calls);
    assert_eq!(got[..2], [EPERM, EPERM]);
    assert!(got[2].starts_with("ok ") && got[3] == "ok 0", "{got:?}");
    // clone3 hides its flags from the filter: ENOSYS, so that libcs use clone.
    assert_eq!(got[4], "errno 38");
    // busybox's own applet meets the same wall.
    let out = sb.run(["unshare", "-U", "true"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stderr(&out).contains("Operation not permitted"), "{out:?}");
    sb.assert_clean();
}

/// KEYCTL_SEARCH of host root's user keyring for a "user" key: its serial.
fn host_key(description: &str) -> Option<i64> {
    let (kind, desc) = (c"user", std::ffi::CString::new(description).unwrap());
    // SAFETY: plain system call on valid C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            10, // KEYCTL_SEARCH
            -4, // KEY_SPEC_USER_KEYRING
            kind.as_ptr(),
            desc.as_ptr(),
            0,
        )
    };
    (r >= 0).then_some(r)
}

#[test]
fn host_root_s_keyring_stays_out_of_reach() {
    let sb = Sandbox::new();
    let image = image(&sb);
    let description = format!("psdock-test-{}", std::process::id());
    let call = format!("add_key {description}");
    let got = answers(&sb, &image, &[], &[&call, "keyctl"]);
    assert_eq!(got, [EPERM, EPERM]);
    assert_eq!(
        host_key(&description),
        None,
        "the container wrote a host key"
    );
    // Unconfined, container root writes into host root's own keyring: the
    // route the filter closes.
    let got = answers(&sb, &image, &["-seccomp", "unconfined"], &[&call]);
    let key = host_key(&description);
    if let Some(serial) = key {
        // SAFETY: plain system call: KEYCTL_UNLINK from the user keyring.
        unsafe { libc::syscall(libc::SYS_keyctl, 9, serial, -4) };
    }
    assert_eq!(
        got,
        [format!("ok {}", key.expect("no host key unconfined"))]
    );
    sb.assert_clean();
}

#[test]
#[cfg(target_arch = "x86_64")]
fn other_abis_are_refused_not_killed() {
    let sb = Sandbox::new();
    let image = image(&sb);
    // i386 through int 0x80 and x32: no rule of the filter speaks of them.
    let calls = ["i386-getpid", "x32-getpid"];
    assert_eq!(answers(&sb, &image, &[], &calls), [EPERM, EPERM]);
    let unconfined = answers(&sb, &image, &["-seccomp", "unconfined"], &calls);
    assert!(unconfined[0].starts_with("ok "), "{unconfined:?}");
    sb.assert_clean();
}

/// An allow-by-default profile that refuses to make directories with EDQUOT.
const NO_MKDIR: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}
    ]
}"#;

#[test]
fn a_profile_file_is_applied_with_its_errno() {
    let sb = Sandbox::new();
    let image = image(&sb);
    let profile = sb.path("no-mkdir.json");
    std::fs::write(&profile, NO_MKDIR).unwrap();
    let flags = ["-seccomp", profile.to_str().unwrap()];
    let out = output(
        sb.psdock_with(&image)
            .args(flags)
            .args(sh("mkdir /tmp/d; echo $?; touch /tmp/f && echo touched")),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "1\ntouched\n");
    assert!(stderr(&out).contains("Disk quota exceeded"), "{out:?}");
    let got = answers(&sb, &image, &flags, &["mkdir /tmp/d", "keyctl"]);
    assert_eq!(got[0], "errno 122", "{got:?}");
    // The file replaces the default filter: what it does not refuse goes through.
    assert!(got[1].starts_with("ok "), "{got:?}");
    // Not through x32 either, though the profile's default is to allow.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(answers(&sb, &image, &flags, &["x32-mkdir /tmp/d"]), [EPERM]);
    sb.assert_clean();
}

#[test]
fn a_bad_profile_is_exit_125_naming_flag_and_file_and_leaves_nothing() {
    let sb = Sandbox::new();
    for (name, text, says) in [
        ("json", "{\"defaultAction\": ", "EOF"),
        (
            "action",
            r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#,
            "SCMP_ACT_MAYBE",
        ),
        (
            "op",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_SOMETIMES"}]}]}"#,
            "SCMP_CMP_SOMETIMES",
        ),
        (
            "notify",
            r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
            "SCMP_ACT_NOTIFY",
        ),
    ] {
        let path = sb.path(&format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        let out = sb.run(["-seccomp", path.to_str().unwrap(), "true"]);
        assert_psdock_error(&out, &["-seccomp", path.to_str().unwrap(), says]);
        sb.assert_clean();
    }
    for path in [sb.path("missing.json"), sb.path("")] {
        let out = sb.run(["-seccomp", path.to_str().unwrap(), "true"]);
        assert_psdock_error(&out, &["-seccomp", path.to_str().unwrap()]);
        sb.assert_clean();
    }
}

fn psdock_exec(sb: &Sandbox, c: &Running, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_psdock-exec"));
    cmd.env("PSDOCK_STATE_DIR", sb.state_dir())
        .arg(c.id())
        .args(args);
    output(&mut cmd)
}

#[test]
fn psdock_exec_gets_the_container_s_filter_even_after_its_file_changed() {
    let sb = Sandbox::new();
    let image = image(&sb);
    let mut c = start(&sb, {
        let mut cmd = sb.psdock_with(&image);
        cmd.args(["sleep", "1000"]);
        cmd
    });
    let out = psdock_exec(&sb, &c, &["sh", "-c", "probe keyctl; probe unshare-user"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "errno 1\nerrno 1\n");
    assert_eq!(c.stop(), 143);

    let profile = sb.path("no-mkdir.json");
    std::fs::write(&profile, NO_MKDIR).unwrap();
    let mut c = start(&sb, {
        let mut cmd = sb.psdock_with(&image);
        cmd.args(["-seccomp", profile.to_str().unwrap(), "sleep", "1000"]);
        cmd
    });
    // What the container runs under is what it was started with.
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    let out = psdock_exec(&sb, &c, &["probe", "mkdir", "/tmp/d"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(stdout(&out), "errno 122\n");
    std::fs::remove_file(&profile).unwrap();
    let out = psdock_exec(&sb, &c, &["probe", "mkdir", "/tmp/d"]);
    assert_eq!(stdout(&out), "errno 122\n", "{out:?}");
    assert_eq!(c.stop(), 143);
    sb.assert_clean();
}
