//! Reclaiming what a psdock that was killed left behind: the overlay mount,
//! ROOTFS (if psdock made it), the hidden sibling and the entry, and nothing
//! else. The entry says what was made; the sibling's lock says whether a live
//! psdock uses that rootfs now, and is held while the reclaim works.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::record::{Record, Status};
use super::store::{self, Listed, StateError};
use crate::rootfs::{detach, lock_sibling, remove_siblings, upper_and_work, SiblingLock, Upper};

/// How long a reclaim waits for an init whose psdock is gone to end.
const INIT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    #[error("its psdock (pid {0}) is alive")]
    OwnerAlive(i32),
    #[error("its container init (pid {0}) did not end")]
    InitAlive(i32),
    #[error("{} is in use by a running psdock", .0.display())]
    InUse(PathBuf),
    #[error("{} is a mount point psdock did not make", .0.display())]
    ForeignMount(PathBuf),
    #[error(transparent)]
    Cgroup(crate::cgroup::CgroupError),
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ReclaimError + 'a {
    move |source| ReclaimError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Reclaims one stale entry: refuses while its psdock is alive, ends an init
/// that outlived its psdock, then removes only what the entry recorded.
pub fn reclaim(dir: &Path, record: &Record) -> Result<(), ReclaimError> {
    if record.psdock.is_alive() {
        return Err(ReclaimError::OwnerAlive(record.psdock.pid));
    }
    if let Some(init) = record.init.filter(|i| i.is_alive()) {
        // PDEATHSIG is on its way; make sure, through a pidfd that names
        // exactly this process, and wait for the whole container to end.
        end(init).map_err(|_| ReclaimError::InitAlive(init.pid))?;
    }
    if let Some(path) = &record.created.cgroup {
        crate::cgroup::Cgroup::open(path)
            .and_then(|c| c.remove())
            .map_err(ReclaimError::Cgroup)?;
    }
    let created = &record.created;
    // Held until the end: a psdock starting on this ROOTFS meanwhile sees it in use.
    let lock = match lock_sibling(&created.sibling).map_err(io("lock", &created.sibling))? {
        SiblingLock::Free(lock) => Some(lock),
        // Nothing of ours can be mounted or left without the sibling, and
        // ROOTFS, if it exists, is not ours to touch any more.
        SiblingLock::NoSibling => None,
        SiblingLock::Held => return Err(ReclaimError::InUse(created.mount.clone())),
    };
    if lock.is_some() {
        let mountinfo = crate::proc::read("/proc/self/mountinfo")
            .map_err(io("read the mounts of", &created.mount))?;
        let (upper, _) = upper_and_work(&created.sibling, created.upper);
        match parse_top_mount(&mountinfo, &created.mount) {
            None => {}
            Some(m) if m.is_overlay_on(&upper) => {
                detach(&created.mount).map_err(|e| io("unmount", &created.mount)(e.into()))?;
            }
            Some(_) => return Err(ReclaimError::ForeignMount(created.mount.clone())),
        }
        if created.rootfs_dir {
            // rmdir: refuses anything still holding files or a mount.
            match std::fs::remove_dir(&created.mount) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &created.mount)(e));
                }
                _ => {}
            }
        }
        if created.upper == Upper::Tmpfs {
            // The lock is on this tmpfs: it holds it, detached, until the end.
            match parse_top_mount(&mountinfo, &created.sibling) {
                None => {}
                Some(m) if m.fstype == "tmpfs" => {
                    detach(&created.sibling)
                        .map_err(|e| io("unmount", &created.sibling)(e.into()))?;
                }
                Some(_) => return Err(ReclaimError::ForeignMount(created.sibling.clone())),
            }
        }
        // The sibling is locked by us: an upper directory beside it is ours
        // when the record says it made one there.
        remove_siblings(&created.sibling, created.upper == Upper::Disk)
            .map_err(|(dir, e)| io("remove", &dir)(e))?;
    }
    let entry = store::entry_path(dir, &record.id);
    match std::fs::remove_file(&entry) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &entry)(e)),
        _ => Ok(()),
    }
}

/// SIGKILL through a checked pidfd, then wait until the process has ended.
fn end(init: crate::proc::ProcId) -> Result<(), nix::Error> {
    let pidfd = match init.pidfd() {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(e),
    };
    crate::proc::pidfd_send(&pidfd, libc::SIGKILL);
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = INIT_GRACE.as_millis() as u16;
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms))? {
        0 => Err(nix::errno::Errno::ETIMEDOUT),
        _ => Ok(()),
    }
}

/// What `psdock-ls --prune` did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub reclaimed: Vec<Record>,
    pub failed: Vec<StateError>,
    /// Entries that cannot be read: what they recorded is unknown, so they stay.
    pub broken: Vec<(String, String)>,
}

/// Reclaims every stale entry, and removes the temporary files of writers that
/// died.
pub fn prune(dir: &Path) -> Result<Pruned, StateError> {
    let mut pruned = Pruned::default();
    for listed in store::list(dir)? {
        match listed {
            Listed::Record(r) if store::status(dir, &r) == Some(Status::Stale) => {
                match reclaim(dir, &r) {
                    Ok(()) => pruned.reclaimed.push(*r),
                    Err(why) => pruned.failed.push(StateError::Reclaim {
                        id: r.id.clone(),
                        rootfs: r.rootfs.clone(),
                        why,
                    }),
                }
            }
            Listed::Record(_) => {}
            Listed::Broken { id, why } => pruned.broken.push((id, why)),
        }
    }
    for tmp in store::leftover_temporaries(dir) {
        let _ = std::fs::remove_file(tmp);
    }
    // Addresses leased to containers that have no entry any more: their
    // psdock was killed, and its entry has just been reclaimed (or was
    // killed before it recorded the lease).
    #[cfg(feature = "net-bridge")]
    let _ = crate::net::lease::prune(dir);
    Ok(pruned)
}

/// One line of `/proc/self/mountinfo`, the fields a reclaim looks at.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    fstype: String,
    /// The super options, split and unescaped.
    options: Vec<OsString>,
}

impl Mount {
    fn is_overlay_on(&self, upper: &Path) -> bool {
        let mut want = b"upperdir=".to_vec();
        want.extend_from_slice(upper.as_os_str().as_bytes());
        self.fstype == "overlay" && self.options.iter().any(|o| o.as_bytes() == want)
    }
}

/// The mount on top at `path` in this mount namespace, if `path` is a mount
/// point, as `mountinfo` lists them.
fn parse_top_mount(mountinfo: &[u8], path: &Path) -> Option<Mount> {
    let mut top = None;
    for line in mountinfo.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        // Optional fields end with "-"; then fstype, source, super options.
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.len() < dash + 4 || fields.len() < 5 {
            continue;
        }
        if unescape(fields[4]) != path.as_os_str().as_bytes() {
            continue;
        }
        // Later lines are mounted later: the last one at a path is on top.
        top = Some(Mount {
            fstype: String::from_utf8_lossy(fields[dash + 1]).into_owned(),
            options: fields[dash + 3]
                .split(|&b| b == b',')
                .map(|o| OsString::from_vec(unescape(o)))
                .collect(),
        });
    }
    top
}

/// mountinfo writes a space, tab, newline, backslash (and overlay a comma) in
/// paths and options as `\` and three octal digits.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')),
                );
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_mount_at_a_path_and_its_upper_directory() {
        let info = b"22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
            90 29 0:50 / /tmp/a\\040b rw,relatime shared:1 - tmpfs tmpfs rw\n\
            91 90 0:51 / /tmp/a\\040b rw,relatime - overlay overlay rw,lowerdir=/img,upperdir=/tmp/.a\\040b.psdock-upper,workdir=/tmp/.a\\040b.psdock\n";
        let m = parse_top_mount(info, Path::new("/tmp/a b")).unwrap();
        assert!(m.is_overlay_on(Path::new("/tmp/.a b.psdock-upper")));
        assert!(!m.is_overlay_on(Path::new("/tmp/.other.psdock-upper")));
        assert_eq!(parse_top_mount(info, Path::new("/tmp/a")), None);
        assert_eq!(unescape(b"a\\054b\\134"), b"a,b\\");
        assert_eq!(unescape(b"end\\05"), b"end\\05");
    }
}
