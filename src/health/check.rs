//! One health check: a process entered into the running container exactly as
//! psdock-exec enters one (its namespaces, root, user, environment,
//! capabilities, system-call filter and working directory), its output kept,
//! waited for through its pidfd so that the supervisor never blocks on it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

use super::HealthSpec;
use crate::container::{self, Container, ContainerError, ProcessPlan};
use crate::proc::ProcId;
use crate::spec::{ProcessSpec, RunSpec};

/// How much of a check's output is kept: its end, as docker keeps 4 KiB.
pub const KEPT_OUTPUT: usize = 4096;
/// The exit code recorded for a check killed at its timeout (docker's -1).
pub const TIMED_OUT: i32 = -1;

/// What a check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub start: SystemTime,
    pub end: SystemTime,
    /// The check's exit code, 128+N by signal N, [`TIMED_OUT`], or psdock's
    /// code when it could not be started.
    pub exit_code: i32,
    /// The last [`KEPT_OUTPUT`] bytes of its stdout and stderr together.
    pub output: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }

    /// A check that could not be started: it failed, and the output says why.
    pub fn not_started(start: SystemTime, exit_code: i32, why: String) -> Self {
        Self {
            start,
            end: SystemTime::now(),
            exit_code,
            output: format!("psdock: {why}"),
        }
    }
}

/// Everything a check needs, built once before the first (the plan of a
/// child that shares psdock's memory is made in the parent).
pub struct Checker {
    spec: ProcessSpec,
    plan: ProcessPlan,
    stdin: OwnedFd,
    init: ProcId,
    pid_ns: u64,
    pub timeout: Duration,
}

impl Checker {
    /// `cgroup`: the container's, if it has one; each check runs inside it,
    /// under the container's limits, as docker's do.
    pub fn new(
        health: &HealthSpec,
        run: &RunSpec,
        init: Pid,
        cgroup: Option<&crate::cgroup::Cgroup>,
    ) -> io::Result<Checker> {
        let spec = ProcessSpec {
            command: health.command.clone(),
            env: run.env.clone(),
            cwd: run.cwd.clone(),
            identity: run.identity.clone(),
        };
        let mut plan = ProcessPlan::new(&spec, run.caps, [None; 3]);
        plan.seccomp = run.seccomp.filter.clone();
        plan.cgroup_procs = cgroup.map(|c| c.procs_files()).unwrap_or_default();
        let init =
            ProcId::of(init.as_raw())?.ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
        Ok(Checker {
            spec,
            plan,
            stdin: std::fs::File::open("/dev/null")?.into(),
            pid_ns: std::fs::metadata(format!("/proc/{}/ns/pid", init.pid))?.ino(),
            init,
            timeout: health.timeout,
        })
    }

    /// Starts one check in the container whose init is `init_pidfd`.
    pub fn start(&mut self, init_pidfd: &OwnedFd) -> Result<Running, ContainerError> {
        let started = SystemTime::now();
        let (out_r, out_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ContainerError::Clone)?;
        // Only psdock's end: the check's stays blocking, as any stdout.
        nix::fcntl::fcntl(
            out_r.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(ContainerError::Clone)?;
        let out = out_w.as_raw_fd();
        self.plan.stdio = [Some(self.stdin.as_raw_fd()), Some(out), Some(out)];
        let child = container::enter(self.init, init_pidfd, &self.spec, &self.plan, None)?;
        drop(out_w);
        // SAFETY: the pipe is owned by its registration; the pidfd by
        // `child`, which `Running` drops after the registration.
        let out = unsafe { AsyncFd::register_with_interest(out_r, Interest::READABLE) }.ok();
        let exited = unsafe {
            AsyncFd::register_with_interest(Fd(child.pidfd.as_raw_fd()), Interest::READABLE)
        }
        .map_err(|e| ContainerError::Inspect(e.into()))?;
        Ok(Running {
            out,
            exited,
            child,
            kept: VecDeque::new(),
            started,
            deadline: Instant::now() + self.timeout,
            pid_ns: self.pid_ns,
        })
    }
}

struct Fd(std::os::fd::RawFd);
impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// A check that runs. Waiting for it can be given up and resumed (the
/// supervisor's loop polls it among its other sources): what it has read is
/// kept here, not in the future.
pub struct Running {
    // Declared before `child`, whose pidfd it watches: dropped first.
    exited: AsyncFd<Fd>,
    child: Container,
    out: Option<AsyncFd<OwnedFd>>,
    kept: VecDeque<u8>,
    started: SystemTime,
    deadline: Instant,
    pid_ns: u64,
}

impl Running {
    /// Until the check has exited, or has been killed at its timeout.
    pub async fn wait(&mut self) -> Outcome {
        let exit_code = loop {
            tokio::select! {
                biased;
                _ = self.exited.readable() => {
                    // Before the reap: the zombie still holds its group's id.
                    self.kill();
                    break reap(&self.child);
                }
                guard = async { self.out.as_ref().expect("guarded").readable().await }, if self.out.is_some() => {
                    match guard {
                        Ok(mut guard) => {
                            if read_into(guard.get_inner(), &mut self.kept) {
                                self.out = None;
                            } else {
                                guard.clear_ready();
                            }
                        }
                        Err(_) => self.out = None,
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => {
                    self.kill();
                    reap(&self.child);
                    break TIMED_OUT;
                }
            }
        };
        // What it wrote is in the pipe already.
        if let Some(out) = self.out.take() {
            read_into(out.get_ref(), &mut self.kept);
        }
        let (a, b) = self.kept.as_slices();
        Outcome {
            start: self.started,
            end: SystemTime::now(),
            exit_code,
            output: String::from_utf8_lossy(&[a, b].concat()).into_owned(),
        }
    }

    /// Kills the check and everything it started: its process group (it
    /// leads a session of its own; what it left running when it ended goes
    /// too), and any descendant of a live check that left the group, each
    /// checked to still be in the container before it is signalled.
    fn kill(&self) {
        let pid = self.child.pid;
        let strays: Vec<OwnedFd> = crate::proctree::descendants(pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| *p != pid)
            .filter_map(|p| {
                let fd = crate::proc::pidfd_open(p).ok()?;
                // Opened first, looked at second: a pid reused in between
                // fails the look, and a pidfd can reach no other process.
                let ns = std::fs::metadata(format!("/proc/{p}/ns/pid")).ok()?;
                (ns.ino() == self.pid_ns).then_some(fd)
            })
            .collect();
        crate::proc::pidfd_send(&self.child.pidfd, libc::SIGKILL);
        // SAFETY: plain system call; the group is the check's own session,
        // which exists while the unreaped check holds its id.
        unsafe { libc::kill(-pid.as_raw(), libc::SIGKILL) };
        for fd in &strays {
            crate::proc::pidfd_send(fd, libc::SIGKILL);
        }
    }
}

/// Reads what is there; true at end of file or on an error.
fn read_into(fd: &OwnedFd, kept: &mut VecDeque<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                kept.extend(&buf[..n]);
                let over = kept.len().saturating_sub(KEPT_OUTPUT);
                kept.drain(..over);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return false,
            Err(_) => return true,
        }
    }
}

/// The check's exit code, once it has ended (the pidfd said so); 128+N by
/// signal N.
fn reap(child: &Container) -> i32 {
    crate::supervisor::reap(child.pidfd.as_raw_fd()).map_or(TIMED_OUT, |e| e.exit_code())
}
