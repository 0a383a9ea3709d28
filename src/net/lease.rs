//! Addresses given out on a bridge: one file per address under
//! `STATE_DIR/net/BRIDGE/`, made with O_EXCL (so two psdocks never take the
//! same one) and holding the id of the container that has it. A lease whose
//! container has no entry any more was left by a killed psdock: it is taken
//! back when the address is next needed, and by `psdock-ls --prune`.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::spec::Subnet;
use crate::state;

/// An address held for a container, given back when dropped.
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    path: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn bridge_dir(state_dir: &Path, bridge: &str) -> PathBuf {
    state_dir.join("net").join(bridge)
}

/// The first free address of `subnet` after the bridge's own (its first).
pub fn take(state_dir: &Path, bridge: &str, subnet: &Subnet, id: &str) -> io::Result<Lease> {
    let dir = bridge_dir(state_dir, bridge);
    std::fs::create_dir_all(&dir)?;
    let mut n = 2;
    while let Some(ip) = subnet.host(n) {
        let path = dir.join(ip.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(id.as_bytes())?;
                return Ok(Lease { ip, path });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if is_stale(state_dir, &path) {
                    // Taken back; the same address is tried again, and the
                    // exclusive create settles a race for it.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
            }
            Err(e) => return Err(e),
        }
        n += 1;
    }
    Err(io::Error::other(format!(
        "no free address left in {subnet}"
    )))
}

/// Whether the lease at `path` belongs to no container psdock knows.
fn is_stale(state_dir: &Path, path: &Path) -> bool {
    let Ok(id) = std::fs::read_to_string(path) else {
        return false;
    };
    // A lease being written has no id yet: not stale.
    !id.is_empty() && state::is_id(&id) && state::find(state_dir, &id).is_none()
}

/// Removes the leases of containers without an entry; how many.
pub fn prune(state_dir: &Path) -> io::Result<usize> {
    let root = state_dir.join("net");
    let mut removed = 0;
    let bridges = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for bridge in bridges {
        let bridge = bridge?.path();
        if !bridge.is_dir() {
            continue;
        }
        for lease in std::fs::read_dir(bridge)? {
            let path = lease?.path();
            if is_stale(state_dir, &path) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
