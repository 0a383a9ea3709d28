//! The file sink: appending, refusing symlinks, rotation without losing or
//! repeating a line, retention, a log moved or deleted under psdock, the
//! leftovers of a killed run; held writes (a full disk, ...) in `held`.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::util::*;

mod held;

/// Writes numbered lines as fast as the shell can, checking for `/ctl/stop`
/// every 1000 lines.
const NUMBERS: &str =
    "i=0; while :; do j=0; while [ $j -lt 1000 ]; do echo $i; i=$((i+1)); j=$((j+1)); done; \
                       [ -e /ctl/stop ] && break; done";

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("app.log."))
        .collect();
    names.sort();
    names
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// `app.log.YYYYMMDDTHHMMSS.nnnnnnnnnZ.gz`
fn is_archive_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix("app.log.")
        .and_then(|s| s.strip_suffix(".gz"))
    else {
        return false;
    };
    let shape = "00000000T000000.000000000Z";
    stamp.len() == shape.len()
        && stamp
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == '0' { c.is_ascii_digit() } else { c == s })
}

#[test]
fn stdout_and_stderr_are_appended_in_order_to_a_0640_file() {
    let sb = Sandbox::new();
    let log = sb.path("app.log");
    // SAFETY: umask is async-signal-safe.
    let out = unsafe {
        sb.psdock().pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        })
    }
    .args(["-stdio", &url(&log), "-stdout-prefix", "app| "])
    .args([
        "sh",
        "-c",
        "echo one; echo two >&2; echo three; cat; tty; true",
    ])
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "app| one\napp| two\napp| three\napp| not a tty\n"
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let out = sb.run(["-stdio", &url(&log), "echo", "four"]);
    assert_eq!(code(&out), 0);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .ends_with("app| not a tty\nfour\n"));
    sb.assert_clean();
}

#[test]
fn a_symlink_at_the_log_path_is_refused_before_the_container_starts() {
    let sb = Sandbox::new();
    let ctl = sb.path("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let victim = sb.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let log = sb.path("app.log");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let bind = format!("{}:/ctl", ctl.display());
    let out = sb.run(["-v", &bind, "-stdio", &url(&log), "touch", "/ctl/ran"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "psdock: -stdio {}: is a symlink; refusing to follow it\n",
            url(&log)
        )
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!ctl.join("ran").exists(), "the command ran");
    sb.assert_clean();
}

#[test]
fn a_missing_log_directory_is_125_before_the_container_starts() {
    let sb = Sandbox::new();
    let log = sb.path("nope/app.log");
    let out = sb.run(["-stdio", &url(&log), "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "psdock: -stdio {}: no such directory {}\n",
            url(&log),
            sb.path("nope").display()
        )
    );
    assert!(!sb.path("nope").exists());
    sb.assert_clean();
}

struct Rotating {
    sb: Sandbox,
    logs: PathBuf,
    ctl: PathBuf,
}

impl Rotating {
    fn new() -> Self {
        let sb = Sandbox::new();
        let logs = sb.path("logs");
        let ctl = sb.path("ctl");
        std::fs::create_dir(&logs).unwrap();
        std::fs::create_dir(&ctl).unwrap();
        Self { sb, logs, ctl }
    }

    fn spawn(&self, flags: &[&str], script: &str) -> std::process::Child {
        self.sb
            .psdock()
            .arg("-v")
            .arg(format!("{}:/ctl", self.ctl.display()))
            .args(["-stdio", &url(&self.logs.join("app.log"))])
            .args(flags)
            .args(["sh", "-c", script])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn stop(&self, child: std::process::Child) {
        std::fs::write(self.ctl.join("stop"), "").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stderr(&out), "");
    }
}

#[test]
fn rotation_every_second_loses_and_repeats_no_line() {
    let r = Rotating::new();
    let child = r.spawn(&["-log-rotate", "1s"], NUMBERS);
    wait_for("three archives", || {
        let gz = archives(&r.logs)
            .iter()
            .filter(|n| n.ends_with(".gz"))
            .count();
        (gz >= 3).then_some(())
    });
    r.stop(child);
    let names = archives(&r.logs);
    assert!(
        names.iter().all(|n| is_archive_name(n)),
        "unexpected files: {names:?}"
    );
    let mut all = String::new();
    for name in &names {
        let text = gunzip(&r.logs.join(name));
        assert!(
            text.ends_with('\n'),
            "{name} does not end at a line boundary"
        );
        all += &text;
    }
    all += &std::fs::read_to_string(r.logs.join("app.log")).unwrap();
    let count = all.lines().count();
    assert!(count > 3000, "only {count} lines");
    for (i, line) in all.lines().enumerate() {
        assert_eq!(line, i.to_string(), "line {i}");
    }
    r.sb.assert_clean();
}

#[test]
fn retention_keeps_the_newest_archives_and_touches_nothing_else() {
    let r = Rotating::new();
    let decoys = ["other.gz", "app.log2_x.gz", "app.log.gz", "app.log.x.gz"];
    for d in decoys {
        std::fs::write(r.logs.join(d), d).unwrap();
    }
    let outside = r.sb.path("outside.gz");
    std::fs::write(&outside, "outside").unwrap();
    let link = "app.log.19990101T000000.000000000Z.gz";
    std::os::unix::fs::symlink(&outside, r.logs.join(link)).unwrap();
    let old = "app.log.20000101T000000.000000000Z.gz";
    std::fs::write(r.logs.join(old), "").unwrap();

    let child = r.spawn(
        &["-log-rotate", "150ms", "-log-keep", "3"],
        "i=0; while [ ! -e /ctl/stop ]; do echo $i; i=$((i+1)); sleep 0.01; done",
    );
    let mut seen = BTreeSet::new();
    wait_for("8 rotations", || {
        seen.extend(
            archives(&r.logs)
                .into_iter()
                .filter(|n| is_archive_name(n) && n.as_str() != old),
        );
        (seen.len() >= 8).then_some(())
    });
    r.stop(child);
    seen.extend(
        archives(&r.logs)
            .into_iter()
            .filter(|n| is_archive_name(n) && n.as_str() != old),
    );

    let kept: Vec<String> = archives(&r.logs)
        .into_iter()
        .filter(|n| is_archive_name(n) && n.as_str() != link)
        .collect();
    let newest: Vec<String> = seen.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(kept, newest, "seen: {seen:?}");
    for d in decoys {
        assert_eq!(std::fs::read_to_string(r.logs.join(d)).unwrap(), d);
    }
    assert!(std::fs::symlink_metadata(r.logs.join(link))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
    r.sb.assert_clean();
}

/// A small tmpfs of the test's own, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn new(at: PathBuf) -> Self {
        Self::with(at, "size=256k")
    }

    /// With tmpfs mount options `options`.
    fn with(at: PathBuf, options: &str) -> Self {
        std::fs::create_dir(&at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .unwrap();
        Self(at)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// How the live log is taken away from psdock in [`the_log_taken_away`].
enum TakeAway {
    Move,
    Delete,
}

/// Runs a container writing numbered lines, takes its log away mid-run,
/// and checks that psdock writes to a new file at the path within the
/// bound, that every line is in exactly one of the two files, in order,
/// and that the old one ends at a line boundary.
fn the_log_taken_away(how: TakeAway) {
    let r = Rotating::new();
    let log = r.logs.join("app.log");
    let child = r.spawn(
        &[],
        "i=0; while [ ! -e /ctl/stop ]; do echo $i; i=$((i+1)); done",
    );
    wait_for("1000 lines in the log", || {
        (std::fs::metadata(&log).ok()?.len() > 5000).then_some(())
    });
    // Reading the old file through a descriptor sees it even once deleted.
    let mut old = std::fs::File::open(&log).unwrap();
    let taken = std::time::Instant::now();
    match how {
        TakeAway::Move => std::fs::rename(&log, r.logs.join("moved.log")).unwrap(),
        TakeAway::Delete => std::fs::remove_file(&log).unwrap(),
    }
    wait_for("a new log at the path", || {
        (std::fs::metadata(&log).ok()?.len() > 0).then_some(())
    });
    let after = taken.elapsed();
    assert!(
        after < std::time::Duration::from_secs(2),
        "the new log appeared after {after:?}"
    );
    r.stop(child);
    let mut first = String::new();
    old.read_to_string(&mut first).unwrap();
    assert!(first.ends_with('\n'), "the old log ends mid-line");
    let second = std::fs::read_to_string(&log).unwrap();
    let old_lines = first.lines().count();
    let all: Vec<&str> = first.lines().chain(second.lines()).collect();
    assert!(
        all.len() > old_lines,
        "nothing in the new log ({old_lines} lines in the old one)"
    );
    for (i, line) in all.iter().enumerate() {
        assert_eq!(
            *line,
            i.to_string(),
            "line {i} ({old_lines} in the old log)"
        );
    }
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    r.sb.assert_clean();
}

#[test]
fn a_log_moved_away_is_reopened_at_its_path_and_no_line_is_lost_or_repeated() {
    the_log_taken_away(TakeAway::Move);
}

#[test]
fn a_deleted_log_is_recreated_at_its_path_and_no_line_is_lost_or_repeated() {
    the_log_taken_away(TakeAway::Delete);
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

#[test]
fn what_a_killed_psdock_left_next_to_the_log_is_finished_by_the_next_run() {
    let r = Rotating::new();
    let stamp = |n: u32| format!("app.log.20000101T000000.00000000{n}Z");
    let at = |name: String| r.logs.join(name);
    // 1: rotated, never compressed. 2: killed while compressing. 3: killed
    // between the archive's rename and the removal of the rotated file.
    // 4: a partial archive whose source is gone: the only copy left.
    for n in 1..=3 {
        std::fs::write(at(stamp(n)), format!("piece {n}\n")).unwrap();
    }
    std::fs::write(at(stamp(2) + ".gz.tmp"), &gzip("piece 2\n")[..10]).unwrap();
    std::fs::write(at(stamp(3) + ".gz"), gzip("piece 3\n")).unwrap();
    let only_copy = &gzip("piece 4\n")[..12];
    std::fs::write(at(stamp(4) + ".gz.tmp"), only_copy).unwrap();

    let child = r.spawn(
        &["-log-rotate", "1h"],
        "echo live; until [ -e /ctl/stop ]; do sleep 0.05; done",
    );
    wait_for("the leftovers finished", || {
        let names = archives(&r.logs);
        let want = [
            stamp(1) + ".gz",
            stamp(2) + ".gz",
            stamp(3) + ".gz",
            stamp(4) + ".gz.tmp",
        ];
        (names == want).then_some(())
    });
    r.stop(child);
    for n in 1..=3 {
        assert_eq!(gunzip(&at(stamp(n) + ".gz")), format!("piece {n}\n"));
    }
    assert_eq!(std::fs::read(at(stamp(4) + ".gz.tmp")).unwrap(), only_copy);
    assert_eq!(
        std::fs::read_to_string(r.logs.join("app.log")).unwrap(),
        "live\n"
    );
    r.sb.assert_clean();
}

#[test]
fn a_rotation_that_keeps_failing_is_reported_once_a_minute() {
    let sb = Sandbox::new();
    // Room for the directory and the live log only: every fresh log file
    // fails for want of an inode.
    let disk = SmallDisk::with(sb.path("disk"), "size=256k,nr_inodes=2");
    let log = disk.0.join("app.log");
    let out = sb
        .psdock()
        .args(["-stdio", &url(&log), "-log-rotate", "100ms"])
        .args(sh(
            "i=0; while [ $i -lt 20 ]; do echo $i; i=$((i+1)); sleep 0.1; done",
        ))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "psdock: {}: cannot create a fresh log file (No space left on device); rotation skipped\n",
            log.display()
        )
    );
    let expected: String = (0..20).map(|i| format!("{i}\n")).collect();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
    drop(disk);
    sb.assert_clean();
}

#[test]
fn a_symlink_put_in_place_of_the_log_is_never_followed() {
    let r = Rotating::new();
    let log = r.logs.join("app.log");
    let victim = r.sb.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let mut child = r.spawn(
        &[],
        "i=0; while [ ! -e /ctl/stop ]; do echo $i; i=$((i+1)); sleep 0.01; done",
    );
    let (said, reader) = Collected::from(child.stderr.take().unwrap());
    wait_for("lines in the log", || {
        (std::fs::metadata(&log).ok()?.len() > 0).then_some(())
    });
    let mut old = std::fs::File::open(&log).unwrap();
    let planted = r.logs.join("planted");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    std::fs::rename(&planted, &log).unwrap();
    said.wait_for(&format!(
        "psdock: {}: the log was moved or deleted and cannot be opened again \
         (is a symlink; refusing to follow it); still writing to the old file\n",
        log.display()
    ));
    // Once the symlink is gone, the next check creates the log afresh.
    std::fs::remove_file(&log).unwrap();
    wait_for("a new log at the path", || {
        (std::fs::metadata(&log).ok()?.len() > 0).then_some(())
    });
    std::fs::write(r.ctl.join("stop"), "").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{}", said.text());
    assert_eq!(said.text().lines().count(), 1, "{}", said.text());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mut first = String::new();
    old.read_to_string(&mut first).unwrap();
    let second = std::fs::read_to_string(&log).unwrap();
    for (i, line) in first.lines().chain(second.lines()).enumerate() {
        assert_eq!(line, i.to_string(), "line {i}");
    }
    r.sb.assert_clean();
}
