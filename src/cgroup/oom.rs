//! Watching a container's cgroup for the kernel's OOM kills: a descriptor
//! that becomes readable when something may have happened (v1: an eventfd
//! registered on `memory.oom_control`; v2: inotify on `memory.events`), and
//! the `oom_kill` counter, read on each wake-up and once more at the end.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::{Cgroup, CgroupError};
use crate::spec::limits::OomStrategy;

/// The watch on one cgroup, with the strategy to apply.
pub struct Oom {
    /// `-oom kill|restart`: a handle of its own on the cgroup, to kill
    /// through (each handle costs libcgroups' probe of every controller).
    cgroup: Option<Cgroup>,
    fd: OwnedFd,
    /// v1: the `memory.oom_control` the eventfd is registered on, held open
    /// for as long as the registration must last.
    _control: Option<File>,
    counter: PathBuf,
    seen: u64,
    strategy: OomStrategy,
    /// v1 under `-oom kill|restart`: the kernel's killer is off in the
    /// cgroup, so psdock counts the OOM it ends the container for.
    holds: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Watch {
        path: path.to_owned(),
        source,
    }
}

fn last_error<T>(path: &Path, r: libc::c_int, ok: T) -> Result<T, CgroupError> {
    if r < 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    Ok(ok)
}

impl Oom {
    /// Made before the command runs, so that no kill goes unseen.
    pub fn watch(cgroup: &Cgroup, strategy: OomStrategy) -> Result<Oom, CgroupError> {
        let dir = cgroup.memory_dir();
        let (fd, control, counter) = if cgroup.is_v2() {
            let counter = dir.join("memory.events");
            // SAFETY: plain system calls; the descriptor is ours.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            let fd = last_error(&counter, fd, fd)?;
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let name = std::ffi::CString::new(counter.as_os_str().as_encoded_bytes())
                .map_err(|e| io(&counter)(e.into()))?;
            let w =
                unsafe { libc::inotify_add_watch(fd.as_raw_fd(), name.as_ptr(), libc::IN_MODIFY) };
            last_error(&counter, w, ())?;
            (fd, None, counter)
        } else {
            let counter = dir.join("memory.oom_control");
            let control = File::open(&counter).map_err(io(&counter))?;
            // SAFETY: plain system call; the descriptor is ours.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            let fd = last_error(&counter, fd, fd)?;
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let register = dir.join("cgroup.event_control");
            std::fs::write(
                &register,
                format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
            )
            .map_err(io(&register))?;
            (fd, Some(control), counter)
        };
        // The cgroup is the container's alone: every kill counted is one of
        // its processes, those before the watch began included.
        Ok(Oom {
            cgroup: match strategy {
                OomStrategy::Notify => None,
                _ => Some(cgroup.try_clone()?),
            },
            fd,
            _control: control,
            counter,
            seen: 0,
            strategy,
            holds: !cgroup.is_v2() && strategy != OomStrategy::Notify,
        })
    }

    pub fn strategy(&self) -> OomStrategy {
        self.strategy
    }

    /// Empties the descriptor and reads the counter: the new total, when
    /// there were kills since the last look.
    pub fn check(&mut self) -> Option<u64> {
        let mut buf = [0u8; 4096];
        // SAFETY: reads into our own buffer from our own non-blocking descriptor.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        if self.holds {
            // Held once; what follows is the container ending.
            let held = self.seen == 0 && under_oom(&self.counter);
            return held.then(|| {
                self.seen = 1;
                1
            });
        }
        let now = oom_kills(&self.counter)?;
        (now > self.seen).then(|| {
            self.seen = now;
            now
        })
    }

    /// Says on stderr, as docker's `OOMKilled` does, that the kernel's OOM
    /// killer had a hand in the end (`code`: psdock's exit code).
    pub fn report(&self, code: i32) {
        let n = self.seen;
        if n == 0 {
            return;
        }
        let kills = if n == 1 {
            "1 OOM kill".to_owned()
        } else {
            format!("{n} OOM kills")
        };
        match (code, self.strategy) {
            (137, OomStrategy::Notify) => {
                eprintln!("psdock: the command was killed by the kernel's OOM killer ({kills} in the container)")
            }
            (137, s) => eprintln!(
                "psdock: the container ran out of memory and was ended whole (-oom {})",
                s.as_str()
            ),
            _ => eprintln!(
                "psdock: the kernel's OOM killer ended processes of the container ({kills})"
            ),
        }
    }

    /// Ends every process of the container (`-oom kill`).
    pub fn kill_all(&self) {
        if let Some(Err(e)) = self.cgroup.as_ref().map(Cgroup::kill_all) {
            eprintln!("psdock: -oom {}: {e}", self.strategy.as_str());
        }
    }
}

impl AsRawFd for Oom {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The `oom_kill` line of `memory.oom_control` (v1) or `memory.events` (v2).
fn oom_kills(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// v1: whether a task of the cgroup is held at its limit (`under_oom 1`).
fn under_oom(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|t| t.lines().any(|l| l == "under_oom 1"))
}
