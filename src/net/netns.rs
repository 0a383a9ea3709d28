//! Network namespaces made and entered on short-lived threads: psdock's own
//! thread never leaves its namespace, so nothing a container does can strand
//! psdock (its web hook, its published ports) in the container's network,
//! and the main thread is again alone when the container is cloned.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sched::CloneFlags;

use super::rtnl::Rtnl;

/// Runs `f` on a thread of its own inside the network namespace `ns`.
pub fn within<T: Send>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// A new network namespace, held by a descriptor (it ends with the last
/// descriptor and the last process in it), with its loopback up.
pub fn create() -> io::Result<OwnedFd> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
                let ns: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
                let mut rtnl = Rtnl::open()?;
                let lo = rtnl
                    .link_index("lo")?
                    .ok_or_else(|| io::Error::other("the new namespace has no lo"))?;
                rtnl.set_up(lo, None)?;
                Ok(ns)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    })
}

/// A route-netlink socket inside `ns`.
pub fn rtnl_in(ns: &OwnedFd) -> io::Result<Rtnl> {
    within(ns.as_fd(), Rtnl::open)
}
