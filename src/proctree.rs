//! The container's processes as the host sees them: its init and every
//! descendant, and which of them hold a given socket. The one walk every port
//! probe uses: a listener opened by a grandchild counts as the command's own.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use procfs::process::{FDTarget, Process};

/// The init and its descendants, parents before children, each once. `children`
/// answers "which processes have one of these parents?" for one generation at a
/// time, so that a source costing one call per question (a command) is asked
/// once per generation, not once per process.
pub fn walk(
    init: Pid,
    mut children: impl FnMut(&[Pid]) -> io::Result<Vec<Pid>>,
) -> io::Result<Vec<Pid>> {
    let mut seen = HashSet::from([init]);
    let mut all = vec![init];
    let mut generation = vec![init];
    while !generation.is_empty() {
        // A pid reused between two reads could point back into the tree:
        // `seen` keeps the walk finite.
        generation = children(&generation)?
            .into_iter()
            .filter(|p| seen.insert(*p))
            .collect();
        all.extend(&generation);
    }
    Ok(all)
}

/// The init and its descendants, read from `/proc`: each task's `children`
/// file where the kernel has them (CONFIG_PROC_CHILDREN), otherwise the parent
/// pid of every process.
pub fn descendants(init: Pid) -> io::Result<Vec<Pid>> {
    if has_children_files(init) {
        walk(init, children_files)
    } else {
        let table = parents()?;
        walk(init, |generation| {
            Ok(table
                .iter()
                .filter(|(_, parent)| generation.contains(parent))
                .map(|(pid, _)| *pid)
                .collect())
        })
    }
}

/// Whether `pid` has ended or is ending: its namespaces are gone (the kernel
/// drops them early in `exit`, before the process is even a zombie), and with
/// them its `ns/` links and `net/` tables, so that every probe's look at it
/// fails with ENOENT although nothing is wrong. A reaped pid has no entry at all.
pub fn has_ended(pid: Pid) -> bool {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// Which of `inodes` one of `pids` has a descriptor open on. Processes that
/// end while they are looked at are skipped.
pub fn held_by(pids: &[Pid], inodes: &[u64]) -> Vec<u64> {
    let mut held = Vec::new();
    for &pid in pids {
        let Ok(fds) = Process::new(pid.as_raw()).and_then(|p| p.fd()) else {
            continue;
        };
        for fd in fds.flatten() {
            if let FDTarget::Socket(inode) = fd.target {
                if inodes.contains(&inode) && !held.contains(&inode) {
                    held.push(inode);
                }
            }
        }
    }
    held
}

/// Answers "does the tree below this init hold one of these sockets?" poll
/// after poll, cheaply when the answer keeps being no.
///
/// The tree is only walked when there is a candidate socket at all, so waiting
/// for a port nobody listens on costs one table look-up per poll. A candidate
/// found to be someone else's (another process listening on the port) is
/// remembered as such for a while, so that it does not cost a walk of every
/// process on the host at each poll; the memory is short so that a socket
/// handed into the tree later is still seen.
pub struct Ownership {
    foreign: HashSet<u64>,
    since: Instant,
}

impl Default for Ownership {
    fn default() -> Self {
        Self {
            foreign: HashSet::new(),
            since: Instant::now(),
        }
    }
}

impl Ownership {
    const FORGET_AFTER: Duration = Duration::from_secs(1);

    pub fn tree_holds(&mut self, init: Pid, inodes: &[u64]) -> io::Result<bool> {
        if self.since.elapsed() > Self::FORGET_AFTER {
            self.foreign.clear();
            self.since = Instant::now();
        }
        let candidates: Vec<u64> = inodes
            .iter()
            .copied()
            .filter(|i| !self.foreign.contains(i))
            .collect();
        if candidates.is_empty() {
            return Ok(false);
        }
        let held = held_by(&descendants(init)?, &candidates);
        if held.is_empty() {
            self.foreign.extend(candidates);
            return Ok(false);
        }
        Ok(true)
    }
}

fn has_children_files(init: Pid) -> bool {
    std::path::Path::new(&format!("/proc/{init}/task/{init}/children")).exists()
}

fn children_files(generation: &[Pid]) -> io::Result<Vec<Pid>> {
    let mut out = Vec::new();
    for &parent in generation {
        let Ok(tasks) = Process::new(parent.as_raw()).and_then(|p| p.tasks()) else {
            continue;
        };
        for task in tasks.flatten() {
            let kids = task.children().unwrap_or_default();
            out.extend(kids.into_iter().map(|k| Pid::from_raw(k as i32)));
        }
    }
    Ok(out)
}

/// `(pid, parent)` of every process on the host.
fn parents() -> io::Result<Vec<(Pid, Pid)>> {
    let all = procfs::process::all_processes().map_err(io::Error::other)?;
    Ok(all
        .flatten()
        .filter_map(|p| p.stat().ok())
        .map(|s| (Pid::from_raw(s.pid), Pid::from_raw(s.ppid)))
        .collect())
}

/// The contract every port probe's unit test checks, with `look` answering
/// for (init, port): this process's listeners on IPv4 and IPv6 loopback are
/// seen, and not from a child's tree, which does not hold them.
#[cfg(test)]
pub fn check_probe(mut look: impl FnMut(Pid, u16) -> bool) {
    use std::net::TcpListener;
    let me = Pid::from_raw(std::process::id() as i32);
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = v4.local_addr().unwrap().port();
    assert!(look(me, port), "own listener on 127.0.0.1");
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    assert!(
        look(me, v6.local_addr().unwrap().port()),
        "own listener on ::1"
    );
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let child_pid = Pid::from_raw(child.id() as i32);
    assert!(!look(child_pid, port), "a listener outside the tree");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_zombie_and_a_reaped_process_have_ended_a_live_one_not() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        // Waited for without reaping: a zombie until `wait` below.
        let id = nix::sys::wait::Id::Pid(pid);
        let flags = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
        nix::sys::wait::waitid(id, flags).unwrap();
        assert!(has_ended(pid), "zombie");
        child.wait().unwrap();
        assert!(has_ended(pid), "reaped");
        assert!(!has_ended(Pid::this()));
    }

    #[test]
    fn walk_visits_each_generation_once_and_survives_a_cycle() {
        let p = Pid::from_raw;
        let tree = |g: &[Pid]| -> io::Result<Vec<Pid>> {
            Ok(g.iter()
                .flat_map(|x| match x.as_raw() {
                    1 => vec![p(2), p(3)],
                    3 => vec![p(4)],
                    4 => vec![p(1)], // a reused pid pointing back
                    _ => vec![],
                })
                .collect())
        };
        assert_eq!(walk(p(1), tree).unwrap(), [p(1), p(2), p(3), p(4)]);
    }

    #[test]
    fn finds_a_grandchild_and_the_socket_it_holds() {
        // sh -> (sh -> sleep): the grandchild holds a listening socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "(sleep 30; true) & wait"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = Pid::from_raw(child.id() as i32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let tree = loop {
            let tree = descendants(me).unwrap();
            if tree.len() >= 3 || std::time::Instant::now() > deadline {
                break tree;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(tree[0], me);
        assert_eq!(tree.len(), 3, "sh, subshell, sleep: {tree:?}");
        // Nobody in the child's tree holds the test's own socket; the test does.
        assert!(held_by(&tree, &[inode]).is_empty());
        let own = Pid::from_raw(std::process::id() as i32);
        assert_eq!(held_by(&[own], &[inode, 1]), [inode]);
        let mut ownership = Ownership::default();
        assert!(!ownership.tree_holds(me, &[]).unwrap());
        assert!(!ownership.tree_holds(me, &[inode]).unwrap());
        assert!(ownership.foreign.contains(&inode));
        assert!(Ownership::default().tree_holds(own, &[inode]).unwrap());
        for pid in tree.iter().rev() {
            let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
        }
        child.wait().unwrap();
    }
}
