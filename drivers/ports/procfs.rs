//! `procfs`: reads the listening table of the container's network namespace
//! from `/proc/<init>/net/tcp` and `tcp6`, keeps the LISTEN sockets on the
//! port, and looks for their inodes among the descriptors of the container's
//! processes. No command is run, but each read makes the kernel walk its whole
//! connection table (3-4 ms here), so it is asked twenty times less often than
//! `netlink`: picked when the kernel has no sock_diag.

use std::io;
use std::time::Duration;

use ::procfs::net::TcpState;
use ::procfs::process::Process;
use nix::unistd::Pid;

use crate::host::Host;
use crate::plugin::{Descriptor, LocalFuture, PluginError, PortProbe, Probe};
use crate::proctree;

/// Two table reads cost 7-9 ms of CPU on this kernel (4.4% of a core when
/// asked every 100 ms): every 200 ms keeps the wait near 2%, like `lsof`'s.
const INTERVAL: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Procfs {
    ownership: proctree::Ownership,
}

inventory::submit! {
    Descriptor::<dyn PortProbe> {
        name: "procfs",
        feature: "ports-procfs",
        priority: 200,
        summary: "/proc/<init>/net/tcp and tcp6",
        probe,
        build: Some(|_| Box::new(Procfs::default())),
    }
}

fn probe(_: &Host) -> Probe {
    std::fs::metadata("/proc/self/net/tcp")
        .map(drop)
        .map_err(|e| format!("cannot read /proc/self/net/tcp: {e}"))
}

impl PortProbe for Procfs {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn listening(&mut self, init: Pid, port: u16) -> LocalFuture<'_, Result<bool, PluginError>> {
        Box::pin(std::future::ready(
            look(&mut self.ownership, init, port)
                .map_err(|e| PluginError::from(format!("procfs port probe: {e}"))),
        ))
    }
}

fn look(ownership: &mut proctree::Ownership, init: Pid, port: u16) -> io::Result<bool> {
    let process = Process::new(init.as_raw()).map_err(io::Error::other)?;
    let mut inodes = Vec::new();
    for table in [process.tcp(), process.tcp6()] {
        let table = table.map_err(io::Error::other)?;
        inodes.extend(
            table
                .iter()
                .filter(|e| e.state == TcpState::Listen && e.local_address.port() == port)
                .map(|e| e.inode),
        );
    }
    ownership.tree_holds(init, &inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_listeners_of_the_tree_on_v4_and_v6_and_no_one_elses() {
        // One memory per tree, as one probe watches one container.
        let mut memories = std::collections::HashMap::new();
        proctree::check_probe(|init, port| {
            let own = memories
                .entry(init)
                .or_insert_with(proctree::Ownership::default);
            look(own, init, port).unwrap()
        });
    }
}
