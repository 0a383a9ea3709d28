//! The file sink's held writes: a full disk, a file-size limit, a log
//! deleted to free space; the command waits, psdock stays, no line is lost.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use super::{url, SmallDisk};
use crate::util::*;

/// Starts `cmd` with its stderr read by a thread as it comes.
fn collecting(
    cmd: &mut std::process::Command,
) -> (std::process::Child, Collected, std::thread::JoinHandle<()>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let (said, reader) = Collected::from(child.stderr.take().unwrap());
    (child, said, reader)
}

/// Once the cause of a held write is gone: psdock says it writes again as
/// its last word, and the command ends well.
fn resumed(
    mut child: std::process::Child,
    said: Collected,
    reader: std::thread::JoinHandle<()>,
    log: &Path,
) {
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{}", said.text());
    assert!(
        said.text()
            .ends_with(&format!("psdock: {}: writing again\n", log.display())),
        "{}",
        said.text()
    );
}

#[test]
fn a_full_disk_holds_the_command_until_space_returns_and_loses_no_line() {
    let sb = Sandbox::new();
    let disk = SmallDisk::new(sb.path("disk"));
    let filler = disk.0.join("filler");
    let fill = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    assert!(!fill.status.success(), "the disk did not fill up");
    let log = disk.0.join("app.log");
    let (mut child, said, reader) = collecting(sb.psdock().args(["-stdio", &url(&log)]).args([
        "sh",
        "-c",
        "i=0; while [ $i -lt 30000 ]; do echo $i; i=$((i+1)); done",
    ]));
    said.wait_for("No space left on device; the command is held until space returns");
    assert!(
        child.try_wait().unwrap().is_none(),
        "psdock ended on a full disk"
    );
    std::fs::remove_file(&filler).unwrap();
    resumed(child, said, reader, &log);
    let text = std::fs::read_to_string(&log).unwrap();
    let expected: String = (0..30000).map(|i| format!("{i}\n")).collect();
    assert!(
        text == expected,
        "the log lost or repeated lines ({} bytes)",
        text.len()
    );
    drop(disk);
    sb.assert_clean();
}

#[test]
fn one_sigterm_ends_a_run_held_by_a_full_disk_after_a_bounded_drain() {
    let sb = Sandbox::new();
    let disk = SmallDisk::new(sb.path("disk"));
    let log = disk.0.join("app.log");
    let (mut child, said, reader) = collecting(
        sb.psdock()
            .args(["-stdio", &url(&log)])
            .args(["yes", "a line for a full disk"]),
    );
    said.wait_for("No space left on device; the command is held until space returns");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // The disk stays full: one SIGTERM must be enough.
    let pid = child.id() as i32;
    wait_ended("psdock to end after one SIGTERM", pid);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(143), "{}", said.text());
    let lost = crate::stdio_net::undelivered(&said.text());
    assert!(lost > 0, "{}", said.text());
    drop(disk);
    sb.assert_clean();
}

/// `rlim` as psdock's soft RLIMIT_FSIZE (the hard limit stays unlimited).
fn file_size_limit(pid: u32, soft: u64) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads a local rlimit; the old value is not asked for.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_file_size_limit_holds_the_command_until_lifted_and_loses_no_line() {
    let sb = Sandbox::new();
    let log = sb.path("app.log");
    let ctl = sb.path("ctl");
    std::fs::create_dir(&ctl).unwrap();
    // Far above anything psdock writes while it sets up; the log starts
    // (sparse) 100 bytes short of it.
    const LIMIT: u64 = 64 << 20;
    let start = LIMIT - 100;
    std::fs::File::create(&log).unwrap().set_len(start).unwrap();
    // SIGXFSZ keeps its default (fatal) disposition: psdock must not die of it.
    let (mut child, said, reader) = collecting(
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            sb.psdock().pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
        .arg("-v")
        .arg(format!("{}:/ctl", ctl.display()))
        .args(["-stdio", &url(&log)])
        // The SIGXFSZ raised by psdock's write is not the command's.
        .args(sh(
            "trap 'touch /ctl/xfsz' XFSZ; i=0; while [ $i -lt 3000 ]; do echo $i; i=$((i+1)); done",
        )),
    );
    said.wait_for(&format!(
        "psdock: {}: File too large; the command is held until the log can be written again\n",
        log.display()
    ));
    assert!(
        child.try_wait().unwrap().is_none(),
        "psdock ended on a file-size limit"
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), LIMIT);
    file_size_limit(child.id(), libc::RLIM_INFINITY);
    resumed(child, said, reader, &log);
    let mut f = std::fs::File::open(&log).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start)).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    let expected: String = (0..3000).map(|i| format!("{i}\n")).collect();
    assert!(
        text == expected,
        "the log lost or repeated lines ({} bytes after the start)",
        text.len()
    );
    assert!(!ctl.join("xfsz").exists(), "SIGXFSZ reached the command");
    sb.assert_clean();
}

#[test]
fn deleting_a_log_that_filled_the_disk_frees_its_space_and_writing_resumes() {
    let sb = Sandbox::new();
    let disk = SmallDisk::new(sb.path("disk"));
    let log = disk.0.join("app.log");
    // About 340 KiB of lines, on a 256 KiB disk: the log fills it.
    let (child, said, reader) = collecting(sb.psdock().args(["-stdio", &url(&log)]).args(sh(
        "i=0; while [ $i -lt 60000 ]; do echo $i; i=$((i+1)); done",
    )));
    said.wait_for("No space left on device; the command is held until space returns");
    std::fs::remove_file(&log).unwrap();
    said.wait_for(&format!("psdock: {}: writing again\n", log.display()));
    resumed(child, said, reader, &log);
    // The deleted file took its lines with it; all the later ones are here.
    let text = std::fs::read_to_string(&log).unwrap();
    let expected: String = (0..60000).map(|i| format!("{i}\n")).collect();
    assert!(
        !text.is_empty() && expected.ends_with(&text),
        "the new log is not the end of the output ({} bytes)",
        text.len()
    );
    drop(disk);
    sb.assert_clean();
}
