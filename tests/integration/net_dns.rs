//! The container's /etc/resolv.conf with `-net bridge` and `none`: the host's
//! without its loopback name servers, docker's fallback when none is left.
//! psdock runs in a mount namespace of its own where a file the test wrote is
//! bound over the host's /etc/resolv.conf, so it reads that file as the host's.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::net::TestBridge;
use crate::util::*;

/// Runs `cmd` with `host_conf` as the host's /etc/resolv.conf, in a private
/// mount namespace (nothing reaches the real host's mounts).
fn with_host_resolv_conf(sb: &Sandbox, cmd: &mut Command, host_conf: &str) -> Output {
    let path = sb.path("host-resolv.conf");
    std::fs::write(&path, host_conf).unwrap();
    // Made before the fork: the hook below runs between fork and exec,
    // where only plain system calls are safe.
    let source = CString::new(path.as_os_str().as_bytes()).unwrap();
    let fail = || Err(std::io::Error::last_os_error());
    // SAFETY: system calls on C strings made beforehand, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return fail();
            }
            let none = std::ptr::null();
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(none, c"/".as_ptr(), none, private, none.cast()) != 0 {
                return fail();
            }
            let target = c"/etc/resolv.conf".as_ptr();
            if libc::mount(source.as_ptr(), target, none, libc::MS_BIND, none.cast()) != 0 {
                return fail();
            }
            Ok(())
        })
    };
    output(cmd)
}

/// The container's resolv.conf, and whether it could write to it, under
/// `net` flags with `host_conf` as the host's.
fn seen_inside(net: Vec<String>, host_conf: &str) -> String {
    let sb = Sandbox::new();
    let script = "cat /etc/resolv.conf; echo >>/etc/resolv.conf 2>/dev/null && echo WRITABLE; true";
    let out = with_host_resolv_conf(&sb, sb.psdock().args(net).args(sh(script)), host_conf);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    sb.assert_clean();
    stdout(&out)
}

const MIXED: &str = "# the test's\nsearch test.lan\nnameserver 127.0.0.1\nnameserver 192.0.2.7\n\
                     options ndots:2\nnameserver ::1\nnameserver 198.51.100.9\nnameserver 127.0.1.1\n";

#[test]
fn a_bridge_container_gets_the_hosts_resolv_conf_without_loopback_servers() {
    let br = TestBridge::new();
    assert_eq!(
        seen_inside(br.args(), MIXED),
        "# the test's\nsearch test.lan\nnameserver 192.0.2.7\noptions ndots:2\n\
         nameserver 198.51.100.9\n"
    );
    // The default shares the host's network, and its file as it is: which
    // also shows that psdock read the test's file as the host's.
    assert_eq!(seen_inside(vec![], MIXED), MIXED);
}

#[test]
fn a_bridge_container_whose_host_has_only_loopback_servers_gets_the_fallback() {
    let br = TestBridge::new();
    assert_eq!(
        seen_inside(
            br.args(),
            "search lan\nnameserver 127.0.0.1\nnameserver ::1\n"
        ),
        "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    );
}

#[test]
fn a_none_container_gets_the_filtered_file_too() {
    assert_eq!(
        seen_inside(
            ["-net", "none"].map(str::to_owned).to_vec(),
            "nameserver 127.0.0.1\nnameserver 192.0.2.7\n"
        ),
        "nameserver 192.0.2.7\n"
    );
}
