//! Capabilities: podman's default set, or the one `-cap-add`/`-cap-drop` made
//! of it (`spec::caps`), given to every process of the container.
//!
//! Written on raw `prctl`/`capset` rather than the `caps` crate because this runs
//! in the cloned child, where we keep to plain system calls.

use nix::errno::Errno;

/// Podman's default capability set (containers/common `pkg/config`): docker's
/// without NET_RAW (raw and packet sockets: with the host's network shared,
/// the host's traffic), MKNOD (device nodes) and AUDIT_WRITE.
const DEFAULT_CAPS: &[u32] = &[
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    18, // CAP_SYS_CHROOT
    31, // CAP_SETFCAP
];

/// The default set as a mask, bit N for capability N.
pub const DEFAULT: u64 = {
    let mut mask = 0;
    let mut i = 0;
    while i < DEFAULT_CAPS.len() {
        mask |= 1 << DEFAULT_CAPS[i];
        i += 1;
    }
    mask
};

/// Docker's default set (moby `oci/caps/defaults.go`), which every container
/// got before the default became podman's: what a state record written then
/// stands for.
pub const DOCKER_DEFAULT: u64 = DEFAULT | 1 << 13 | 1 << 27 | 1 << 29;

/// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`),
/// or CHECKPOINT_RESTORE's (Linux 5.9) when it cannot be read.
pub fn last() -> u32 {
    crate::proc::read("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| String::from_utf8(s).ok()?.trim().parse().ok())
        .unwrap_or(40)
}

/// Every capability of Linux up to 6.x, by number (`linux/capability.h`).
/// Written out rather than taken from a crate: the names are all this needs,
/// and the kernel's own list (`cap_last_cap`) decides which exist here.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability's number from its name, in any case, with or without `CAP_`.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// Drops every capability outside `keep` from the bounding set and clears the
/// ambient set: what the process can ever hold from its next exec on. Effective
/// and permitted stay whole, for the switch of user that follows (`setgroups`
/// needs SETGID, whatever the container keeps); [`set`] narrows them after it.
pub fn bound(keep: u64, cap_last: u32) -> Result<(), Errno> {
    for cap in 0..=cap_last.min(63) {
        // A drop replaces the process's credentials even when the capability
        // is already gone (as `-init`'s command finds most of them): reading
        // first costs less.
        // SAFETY (both): plain prctl with integer arguments.
        if keep & (1 << cap) == 0
            && unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } != 0
        {
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            // EINVAL: a capability this kernel does not have.
            if r != 0 && Errno::last() != Errno::EINVAL {
                return Err(Errno::last());
            }
        }
    }
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets effective and permitted to `keep` and empties inheritable. For a user
/// other than root, the switch away from uid 0 has already cleared effective
/// and permitted, and `keep` must be 0: they cannot be raised again.
pub fn set(keep: u64) -> Result<(), Errno> {
    let data = [
        Data {
            effective: keep as u32,
            permitted: keep as u32,
            inheritable: 0,
        },
        Data {
            effective: (keep >> 32) as u32,
            permitted: (keep >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: header and data have the kernel's layout for version 3 (two words).
    let r = unsafe { libc::syscall(libc::SYS_capset, &HEADER, data.as_ptr()) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The capabilities psdock itself holds (its permitted set): all it can give.
pub fn held() -> Result<u64, Errno> {
    let mut data = [const {
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }
    }; 2];
    // SAFETY: header and data have the kernel's layout for version 3 (two words).
    let r = unsafe { libc::syscall(libc::SYS_capget, &HEADER, data.as_mut_ptr()) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(u64::from(data[1].permitted) << 32 | u64::from(data[0].permitted))
}

/// `capget`/`capset`'s header, version 3: the process itself, two words of bits.
#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

const HEADER: Header = Header {
    version: 0x2008_0522,
    pid: 0,
};

#[repr(C)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("sys_admin"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn default_set_is_podman_s_and_docker_s_has_three_more() {
        // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
        // NET_BIND_SERVICE SYS_CHROOT SETFCAP
        assert_eq!(DEFAULT, 0x800405fb);
        // ... and NET_RAW MKNOD AUDIT_WRITE
        assert_eq!(DOCKER_DEFAULT, 0xa80425fb);
    }

    #[test]
    fn held_is_what_proc_shows() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let prm = status.lines().find_map(|l| l.strip_prefix("CapPrm:\t"));
        assert_eq!(format!("{:016x}", held().unwrap()), prm.unwrap());
    }
}
