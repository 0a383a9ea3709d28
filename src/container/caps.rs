//! Capabilities: docker's default set, and nothing else.
//!
//! Written on raw `prctl`/`capset` rather than the `caps` crate because this runs
//! in the cloned child, where we keep to plain system calls.

use nix::errno::Errno;

/// Docker's default capability set (moby `oci/caps/defaults.go`), by number.
const DEFAULT: &[u32] = &[
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

pub fn default_mask() -> u64 {
    DEFAULT.iter().fold(0, |m, c| m | 1 << c)
}

/// Drops every capability outside the default set from the bounding set, clears
/// the ambient set, and sets effective and permitted to the default set with an
/// empty inheritable set. A later switch to a non-root uid clears effective and
/// permitted, as the kernel does for any setuid away from root.
pub fn restrict(cap_last: u32) -> Result<(), Errno> {
    let keep = default_mask();
    for cap in 0..=cap_last.min(63) {
        if keep & (1 << cap) == 0 {
            // SAFETY: plain prctl with integer arguments.
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
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
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
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_matches_docker() {
        // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
        // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
        assert_eq!(default_mask(), 0xa80425fb);
    }
}
