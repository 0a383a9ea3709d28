//! Image content that would exhaust psdock's memory: a sparse 2 GiB
//! /etc/passwd costs the image nothing and cost psdock 4 GiB (psdock -user)
//! and psdock-exec 6 GiB. Both run here with 256 MiB of address space, so a
//! runaway read fails loudly, and must refuse the file with a clear error.

use std::path::Path;
use std::process::Command;

use super::image_cleanup::limited;
use crate::records::{self, wait_for};
use crate::util::*;

/// psdock needs a few MiB; the file would need 2 GiB.
const ADDRESS_SPACE: u64 = 256 << 20;
const HUGE: u64 = 2 << 30;

fn exec_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_psdock-exec"))
}

#[test]
fn psdock_refuses_an_image_s_huge_etc_passwd() {
    let sb = Sandbox::new();
    let image = sb.image_copy("image");
    std::fs::File::options()
        .write(true)
        .open(image.join("etc/passwd"))
        .unwrap()
        .set_len(HUGE)
        .unwrap();
    for (flags, message) in [
        (
            &["-user", "psdtest"][..],
            "-user psdtest: the image's /etc/passwd is larger than 16 MiB".to_owned(),
        ),
        (
            &[][..],
            format!(
                "-image {}: the image's /etc/passwd is larger than 16 MiB",
                image.display()
            ),
        ),
    ] {
        let mut cmd = sb.psdock_with(&image);
        cmd.args(flags).arg("true");
        let out = output(limited(&mut cmd, libc::RLIMIT_AS, ADDRESS_SPACE));
        assert_psdock_error(&out, &[&message]);
        sb.assert_clean();
    }
}

#[test]
fn psdock_exec_refuses_a_container_s_huge_etc_passwd() {
    let sb = Sandbox::new();
    let mut cmd = sb.psdock();
    let script = format!("truncate -s {HUGE} /etc/passwd && touch /tmp/done && exec sleep 1000");
    cmd.args(sh(&script));
    let c = records::start(&sb, cmd);
    wait_for("the container's /etc/passwd", || {
        sb.rootfs().join("tmp/done").exists().then_some(())
    });
    for (flags, message) in [
        (
            &["-user", "psdtest"][..],
            "psdock-exec: -user psdtest: the container's /etc/passwd is larger than 16 MiB",
        ),
        (
            &[][..],
            &format!(
                "psdock-exec: {}: the container's /etc/passwd is larger than 16 MiB",
                c.id()
            ),
        ),
    ] {
        let mut exec = Command::new(exec_bin());
        exec.env("PSDOCK_STATE_DIR", sb.state_dir())
            .arg(c.id())
            .args(flags)
            .arg("true");
        let out = output(limited(&mut exec, libc::RLIMIT_AS, ADDRESS_SPACE));
        assert_eq!(code(&out), 125, "{out:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with(message) && err.matches('\n').count() == 1,
            "{err:?}"
        );
    }
    drop(c);
    sb.assert_clean();
}
