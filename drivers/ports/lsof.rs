//! `lsof`: the original's way, with its mistakes fixed. `lsof -n -P -w
//! -iTCP:PORT -sTCP:LISTEN -Fp` names every process holding a listening socket
//! on the port (no DNS or service-name look-ups, never a connection's remote
//! port, several holders at once), then `pgrep -P`, one generation at a time,
//! gives the container's process tree, and the answer is whether they meet.
//! Both commands run off the supervisor's thread. A look costs tens of
//! milliseconds of CPU, so it is asked twice a second: the last resort, for a
//! host whose kernel offers neither sock_diag nor readable `/proc/net` tables.

use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::unistd::Pid;

use crate::host::Host;
use crate::plugin::{Descriptor, LocalFuture, PluginError, PortProbe, Probe};
use crate::proctree;

const INTERVAL: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Lsof {
    running: Arc<Mutex<Running>>,
}

/// The command a look is running, shared between the probe and the blocking
/// thread that waits for it: whoever takes it out reaps it.
#[derive(Default)]
struct Running {
    child: Option<Child>,
    /// The probe is gone: no further command may start.
    closed: bool,
}

fn lock(running: &Mutex<Running>) -> MutexGuard<'_, Running> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

inventory::submit! {
    Descriptor::<dyn PortProbe> {
        name: "lsof",
        feature: "ports-lsof",
        priority: 100,
        summary: "the lsof and pgrep commands",
        probe,
        build: Some(|_| Box::new(Lsof::default())),
    }
}

fn probe(_: &Host) -> Probe {
    for tool in ["lsof", "pgrep"] {
        if !in_path(tool) {
            return Err(format!("`{tool}` not found in PATH"));
        }
    }
    Ok(())
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| crate::host::on_path(tool, &path))
}

impl PortProbe for Lsof {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn listening(&mut self, init: Pid, port: u16) -> LocalFuture<'_, Result<bool, PluginError>> {
        Box::pin(async move {
            // The commands wait for their children: on the runtime's thread they
            // would hold up signal forwarding and notifications meanwhile.
            let running = self.running.clone();
            let look = tokio::task::spawn_blocking(move || look(&running, init, port));
            match look.await {
                Ok(answer) => answer.map_err(|e| format!("lsof port probe: {e}").into()),
                Err(e) => Err(format!("lsof port probe: {e}").into()),
            }
        })
    }
}

impl Drop for Lsof {
    /// The probe is dropped when supervision ends, often while a look is still
    /// under way (the command has just exited): its lsof or pgrep must not
    /// outlive psdock, which exits without waiting for that thread.
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        running.closed = true;
        if let Some(mut child) = running.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn look(running: &Mutex<Running>, init: Pid, port: u16) -> io::Result<bool> {
    let holders = listeners(running, port)?;
    if holders.is_empty() {
        return Ok(false);
    }
    let tree = proctree::walk(init, |generation| children(running, generation))?;
    Ok(holders.iter().any(|p| tree.contains(p)))
}

/// The processes holding a TCP socket listening on `port`.
fn listeners(running: &Mutex<Running>, port: u16) -> io::Result<Vec<Pid>> {
    let out = run(
        running,
        Command::new("lsof").args([
            "-n",
            "-P",
            "-w",
            &format!("-iTCP:{port}"),
            "-sTCP:LISTEN",
            "-Fp",
        ]),
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.strip_prefix('p')?.parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// The children of all of `generation`, in one `pgrep` call.
fn children(running: &Mutex<Running>, generation: &[Pid]) -> io::Result<Vec<Pid>> {
    let parents: Vec<String> = generation.iter().map(ToString::to_string).collect();
    let out = run(
        running,
        Command::new("pgrep").arg("-P").arg(parents.join(",")),
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(Pid::from_raw)
        .collect())
}

/// Both commands exit 1, silently, when nothing matched.
/// Started only while the probe exists, and left in `running` for its `Drop`.
fn run(running: &Mutex<Running>, cmd: &mut Command) -> io::Result<String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let gone = || io::Error::other(format!("{name}: the probe has ended"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut stdout, mut stderr) = {
        let mut running = lock(running);
        if running.closed {
            return Err(gone());
        }
        let mut child = cmd.spawn()?;
        let pipes = (child.stdout.take(), child.stderr.take());
        running.child = Some(child);
        match pipes {
            (Some(out), Some(err)) => (out, err),
            _ => return Err(io::Error::other(format!("{name}: no pipes"))),
        }
    };
    // stdout first, then stderr: with -w, lsof says little there, and pgrep
    // nothing, far below what a pipe holds.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    stdout.read_to_end(&mut out)?;
    stderr.read_to_end(&mut err)?;
    let mut child = lock(running).child.take().ok_or_else(gone)?;
    let status = child.wait()?;
    let nothing = status.code() == Some(1) && err.is_empty();
    if !status.success() && !nothing {
        let stderr = String::from_utf8_lossy(&err);
        let why = stderr.lines().next().unwrap_or_default();
        return Err(io::Error::other(format!("{name} {status}: {why}")));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_listeners_of_the_tree_on_v4_and_v6_and_no_one_elses() {
        let running = Mutex::default();
        proctree::check_probe(|init, port| look(&running, init, port).unwrap());
    }

    #[test]
    fn pgrep_finds_the_tree() {
        let me = Pid::from_raw(std::process::id() as i32);
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let running = Mutex::default();
        let tree = proctree::walk(me, |g| children(&running, g)).unwrap();
        assert!(tree.contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn probe_needs_both_commands() {
        assert!(in_path("sh"));
        assert!(!in_path("psdock-surely-no-such-tool"));
    }
}
