//! Who the command runs as and what it sees: -user resolved in the image, -env,
//! -env-file, HOME, -cwd and -hostname.

use crate::util::*;

/// The container's environment, one `KEY=VALUE` per entry (as `env` prints it).
fn env_of(sb: &Sandbox, flags: &[&str]) -> Vec<String> {
    let out = sb.run(flags.iter().copied().chain(["env"]));
    assert_eq!(code(&out), 0, "{out:?}");
    stdout(&out).lines().map(str::to_owned).collect()
}

fn value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn defaults_path_term_and_home() {
    let sb = Sandbox::new();
    let env = env_of(&sb, &[]);
    assert_eq!(
        value(&env, "PATH"),
        Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
    assert_eq!(value(&env, "TERM"), Some("xterm"));
    assert_eq!(value(&env, "HOME"), Some("/root"));
    // psdock's own environment does not leak in.
    assert_eq!(value(&env, "PSDOCK_STATE_DIR"), None);
    let mut keys: Vec<&str> = env.iter().map(|e| e.split('=').next().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["HOME", "PATH", "PSDOCK_TEST_MARK", "TERM"],
        "{env:?}"
    );
    sb.assert_clean();
}

#[test]
fn env_values_override_by_key_and_are_never_split_on_commas() {
    let sb = Sandbox::new();
    let env = env_of(
        &sb,
        &[
            "-e",
            "A=1,B=2",
            "-e",
            "TERM=dumb",
            "-e",
            "X=first",
            "-e",
            "X=second",
            "-e",
            "EMPTY=",
            "-e",
            "EQ=a=b",
        ],
    );
    assert_eq!(value(&env, "A"), Some("1,B=2"));
    assert_eq!(value(&env, "B"), None);
    assert_eq!(value(&env, "TERM"), Some("dumb"));
    assert_eq!(value(&env, "X"), Some("second"));
    assert_eq!(value(&env, "EMPTY"), Some(""));
    assert_eq!(value(&env, "EQ"), Some("a=b"));
    sb.assert_clean();
}

#[test]
fn a_bare_key_copies_psdock_s_value_or_unsets_it() {
    let sb = Sandbox::new();
    let file = sb.path("env");
    std::fs::write(&file, "GONE=from-file\nTERM=from-file\n").unwrap();
    let out = output(
        sb.psdock()
            .env("PSDOCK_T_COPIED", "host value, with comma")
            .env_remove("GONE")
            .env_remove("TERM")
            .arg("-env-file")
            .arg(&file)
            .args([
                "-e",
                "PSDOCK_T_COPIED",
                "-e",
                "GONE",
                "-e",
                "TERM",
                "-e",
                "PSDOCK_T_NEVER_SET",
                "env",
            ]),
    );
    assert_eq!(code(&out), 0, "{out:?}");
    let env: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        value(&env, "PSDOCK_T_COPIED"),
        Some("host value, with comma")
    );
    // Bare keys the host does not have: unset, even the file's and the defaults.
    assert_eq!(value(&env, "GONE"), None, "{env:?}");
    assert_eq!(value(&env, "TERM"), None, "{env:?}");
    assert_eq!(value(&env, "PSDOCK_T_NEVER_SET"), None);
    sb.assert_clean();
}

#[test]
fn env_files_with_comments_and_blank_lines_then_env_wins() {
    let sb = Sandbox::new();
    let one = sb.path("one.env");
    std::fs::write(
        &one,
        "# a comment\n\n   # an indented comment\nFROM_ONE=1\nSHARED=one\nSPACES=two words  \nHASH=a#b\nCRLF=yes\r\n",
    )
    .unwrap();
    let two = sb.path("two.env");
    std::fs::write(&two, "SHARED=two\nOVERRIDDEN=file\nPATH=/bin").unwrap();
    let env = env_of(
        &sb,
        &[
            "-env-file",
            one.to_str().unwrap(),
            "-e",
            "OVERRIDDEN=cli",
            "-env-file",
            two.to_str().unwrap(),
        ],
    );
    assert_eq!(value(&env, "FROM_ONE"), Some("1"));
    assert_eq!(value(&env, "SHARED"), Some("two"), "later files win");
    assert_eq!(value(&env, "SPACES"), Some("two words  "));
    assert_eq!(
        value(&env, "HASH"),
        Some("a#b"),
        "`#` only starts a comment line"
    );
    assert_eq!(value(&env, "CRLF"), Some("yes"));
    assert_eq!(
        value(&env, "OVERRIDDEN"),
        Some("cli"),
        "-e wins over any file"
    );
    assert_eq!(value(&env, "PATH"), Some("/bin"));
    assert!(!env.iter().any(|e| e.contains("comment")), "{env:?}");
    sb.assert_clean();
}

#[test]
fn home_comes_from_the_image_s_passwd_unless_given() {
    let sb = Sandbox::new();
    assert_eq!(
        value(&env_of(&sb, &["-user", "psdtest"]), "HOME"),
        Some("/home/psdtest")
    );
    assert_eq!(
        value(&env_of(&sb, &["-user", "4711:4713"]), "HOME"),
        Some("/home/psdtest")
    );
    assert_eq!(
        value(
            &env_of(&sb, &["-user", "psdtest", "-e", "HOME=/tmp"]),
            "HOME"
        ),
        Some("/tmp")
    );
    // No passwd entry: `/`.
    assert_eq!(value(&env_of(&sb, &["-user", "5555"]), "HOME"), Some("/"));
    sb.assert_clean();
}

/// `(uid, gid, groups)` of the command, from the kernel's view of it.
fn ids(sb: &Sandbox, flags: &[&str]) -> (String, String, String) {
    let out = sb.run(flags.iter().copied().chain(["cat", "/proc/self/status"]));
    assert_eq!(code(&out), 0, "{out:?}");
    let st = stdout(&out);
    let first = |f: &str| field(&st, f).split_whitespace().next().unwrap().to_owned();
    // Real, effective, saved and fs ids must all be switched.
    for f in ["Uid", "Gid"] {
        let all: Vec<&str> = field(&st, f).split_whitespace().collect();
        assert!(all.iter().all(|v| *v == all[0]), "{f}: {all:?}");
    }
    (first("Uid"), first("Gid"), field(&st, "Groups").to_owned())
}

#[test]
fn users_resolve_in_the_image_not_on_the_host() {
    // The point of these ids: the host does not have them.
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let host_group = std::fs::read_to_string("/etc/group").unwrap();
    assert!(!host_passwd
        .lines()
        .any(|l| l.starts_with("psdtest:") || l.split(':').nth(2) == Some("4711")));
    assert!(!host_group.lines().any(|l| l.starts_with("psd")));

    let sb = Sandbox::new();
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    // root is in the image's audio group (29): the host's root is not.
    assert_eq!(ids(&sb, &[]), s("0", "0", "0 29"));
    // By name and by uid: primary group and the supplementary ones the image's
    // /etc/group lists the user in.
    assert_eq!(
        ids(&sb, &["-user", "psdtest"]),
        s("4711", "4712", "4712 4713 4714")
    );
    assert_eq!(
        ids(&sb, &["-user", "4711"]),
        s("4711", "4712", "4712 4713 4714")
    );
    // An explicit group replaces the list.
    assert_eq!(
        ids(&sb, &["-user", "psdtest:psdextra"]),
        s("4711", "4713", "4713")
    );
    assert_eq!(ids(&sb, &["-user", "4711:99"]), s("4711", "99", "99"));
    assert_eq!(ids(&sb, &["-user", "5555:4714"]), s("5555", "4714", "4714"));
    // A uid the image does not know runs with gid 0, as in docker.
    assert_eq!(ids(&sb, &["-user", "5555"]), s("5555", "0", "0"));
    sb.assert_clean();
}

#[test]
fn cwd_is_entered_as_the_user() {
    let sb = Sandbox::new();
    // /home/psdtest is 0700 psdtest's: only psdtest (or root) may enter it.
    let out = sb.run([
        "-user",
        "psdtest",
        "-cwd",
        "/home/psdtest",
        "sh",
        "-c",
        "pwd; touch mine; ls -n mine",
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    let text = stdout(&out);
    assert!(text.starts_with("/home/psdtest\n"), "{text}");
    let owner: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(owner[2..4], ["4711", "4712"], "{text}");
    // /root is 0700 root's: entering it as root first would have succeeded.
    let out = sb.run(["-user", "psdtest", "-cwd", "/root", "pwd"]);
    assert_psdock_error(&out, &["-cwd /root", "Permission denied"]);
    // Without -cwd: `/`.
    let out = sb.run(["-user", "psdtest", "pwd"]);
    assert_eq!(stdout(&out), "/\n");
    sb.assert_clean();
}

#[test]
fn hostname_defaults_to_psdock_and_can_be_set_without_touching_the_host() {
    let host = nix::unistd::gethostname().unwrap();
    let sb = Sandbox::new();
    let out = sb.run(["hostname"]);
    assert_eq!(stdout(&out), "psdock\n");
    let out = sb.run([
        "-hostname",
        "web-1.example",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/hostname",
    ]);
    assert_eq!(stdout(&out), "web-1.example\nweb-1.example\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host);
    sb.assert_clean();
}
