use crate::util::*;

#[test]
fn list_drivers_shows_every_kind_with_this_hosts_verdicts() {
    let sb = Sandbox::new();
    let out = sb.bare().arg("-list-drivers").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let headers: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(headers, ["rootfs:", "stdio:", "ports:", "notify:", "net:"]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
            .to_owned()
    };
    // This kernel has the in-tree overlay and neither of the old filesystems.
    assert!(line("overlay").ends_with(" usable"), "{text}");
    assert!(line("inherit").ends_with(" usable"), "{text}");
    let legacy = line("overlayfs-legacy");
    let aufs = line("aufs");
    for (l, feature) in [(&legacy, "rootfs-overlayfs-legacy"), (&aufs, "rootfs-aufs")] {
        assert!(
            l.contains("rejected: ") || l.contains(&format!("--features {feature}")),
            "{l}"
        );
    }

    let out = sb
        .bare()
        .args(["--list-drivers", "-json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rootfs", "stdio", "ports", "notify", "net"]);
    // The JSON says what the text says, implementation by implementation.
    for kind in json.as_array().unwrap() {
        for i in kind["implementations"].as_array().unwrap() {
            let l = line(i["name"].as_str().unwrap());
            match i["reason"].as_str() {
                None => assert!(i["usable"].as_bool().unwrap() && l.ends_with(" usable")),
                Some(why) => assert!(!i["usable"].as_bool().unwrap() && l.ends_with(why), "{l}"),
            }
            assert_eq!(
                l.contains("compiled out"),
                !i["compiled_in"].as_bool().unwrap()
            );
        }
    }
}

#[test]
fn json_is_only_for_the_listing() {
    let sb = Sandbox::new();
    let out = sb.run(["-json", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "psdock: -json: only with -list-drivers\n");
    sb.assert_clean();
}

#[test]
fn the_chosen_driver_runs_the_container() {
    let sb = Sandbox::new();
    let out = sb.run([
        "-rootfs-driver",
        "overlay",
        "sh",
        "-c",
        "grep -c ' / overlay ' /proc/self/mounts",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n");
    sb.assert_clean();
}

#[cfg(feature = "rootfs-aufs")]
#[test]
fn a_chosen_driver_that_cannot_work_here_is_an_error_without_fallback() {
    let sb = Sandbox::new();
    let out = sb.run(["-rootfs-driver", "aufs", "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "psdock: rootfs implementation `aufs` is not usable on this host: \
         `aufs` is not listed in /proc/filesystems\n"
    );
    sb.assert_clean();
}

#[cfg(feature = "rootfs-overlayfs-legacy")]
#[test]
fn the_legacy_driver_says_it_needs_an_old_kernel() {
    let sb = Sandbox::new();
    let out = sb.run(["--rootfs-driver=overlayfs-legacy", "true"]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(
        err.starts_with("psdock: rootfs implementation `overlayfs-legacy` is not usable on this host: needs a kernel before 3.18 (this is "),
        "{err}"
    );
    sb.assert_clean();
}

#[test]
fn an_unknown_driver_is_an_error_listing_this_builds() {
    let sb = Sandbox::new();
    let out = sb.run(["-rootfs-driver", "zfs", "true"]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(
        err.starts_with("psdock: unknown rootfs implementation `zfs` (this build has: overlay"),
        "{err}"
    );
    sb.assert_clean();
}
