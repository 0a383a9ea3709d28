//! Processes as the host sees them: a pid together with its start time, so that
//! a pid the kernel has since handed to another process is never taken for ours,
//! and pidfds, which then keep hold of the right one.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// One process, named so that pid reuse cannot fool us: the start time is field
/// 22 of `/proc/<pid>/stat`, in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

impl ProcId {
    /// psdock's own.
    pub fn current() -> std::io::Result<ProcId> {
        Self::of(std::process::id() as i32)?.ok_or_else(|| std::io::Error::other("no /proc/self"))
    }

    /// The process that has `pid` now, a zombie included.
    pub fn of(pid: i32) -> std::io::Result<Option<ProcId>> {
        Ok(stat(pid)?.map(|(_, start)| ProcId { pid, start }))
    }

    /// Whether this very process is still alive (a zombie is not).
    pub fn is_alive(self) -> bool {
        // Unreadable /proc: say alive, so that nothing is reclaimed on a guess.
        stat(self.pid).map_or(true, |now| now == Some((false, self.start)))
    }

    /// A pidfd for this process, checked after opening: if the pid was reused in
    /// between, the start time no longer matches and the descriptor is dropped.
    pub fn pidfd(self) -> Result<OwnedFd, Errno> {
        let fd = pidfd_open(Pid::from_raw(self.pid))?;
        if Self::of(self.pid).ok().flatten() != Some(self) {
            return Err(Errno::ESRCH);
        }
        Ok(fd)
    }
}

/// Whether `pid` is a zombie, and its start time; `None` when there is no such
/// process.
fn stat(pid: i32) -> std::io::Result<Option<(bool, u64)>> {
    if pid <= 0 {
        return Ok(None);
    }
    match read(&format!("/proc/{pid}/stat")) {
        Ok(text) => Ok(parse_stat(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// From the text of `/proc/<pid>/stat`: whether the process is a zombie (or
/// dead), and its start time. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<(bool, u64)> {
    let end = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = std::str::from_utf8(&stat[end + 1..])
        .ok()?
        .split_ascii_whitespace();
    // Field 3 is the state; field 22 the start time.
    let zombie = matches!(fields.next()?, "Z" | "X" | "x");
    Some((zombie, fields.nth(22 - 4)?.parse().ok()?))
}

/// Reads a file of `/proc` whole. These report a size of 0, so `std::fs::read`
/// would stat the file and then start from a 32-byte read, doubling its way up
/// a call at a time; the kernel hands these out a page per read.
pub fn read(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` through a pidfd: it reaches the process the pidfd was opened for
/// or nobody. Already gone (ESRCH) is not an error to the callers.
pub fn pidfd_send(pidfd: &impl std::os::fd::AsRawFd, sig: i32) {
    // SAFETY: plain system call on a descriptor the caller owns.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_counted_after_the_name() {
        let stat = b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(stat), Some((false, 98765)));
        let zombie = b"42 (x) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 0 0";
        assert_eq!(parse_stat(zombie), Some((true, 98765)));
        assert_eq!(parse_stat(b"42 (x) S 1"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcId::current().unwrap();
        assert!(me.is_alive());
        assert!(!ProcId {
            start: me.start + 1,
            ..me
        }
        .is_alive());
        me.pidfd().unwrap();
        assert_eq!(
            ProcId {
                start: me.start + 1,
                ..me
            }
            .pidfd()
            .unwrap_err(),
            Errno::ESRCH
        );
    }

    #[test]
    fn read_takes_a_proc_file_or_one_past_a_page_whole() {
        assert_eq!(
            read("/proc/filesystems").unwrap(),
            std::fs::read("/proc/filesystems").unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let text: Vec<u8> = (0..10_000).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read(path.to_str().unwrap()).unwrap(), text);
        let missing = read("/proc/self/no-such-file").unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
