//! The limits in the OCI form libcgroups applies.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, LinuxThrottleDeviceBuilder,
};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use crate::spec::limits::{Device, DeviceRate, Limits, Swap, CPU_PERIOD_US};

/// `swap_accounted`: whether the host accounts for swap, which decides
/// whether docker's default (as much swap as memory) can be set at all.
/// `v1`: the devices controller takes rules (v2's are BPF programs).
pub fn of(limits: &Limits, swap_accounted: bool, v1: bool) -> LinuxResources {
    let mut r = LinuxResources::default();
    if v1 {
        r.set_devices(Some(devices(&limits.devices)));
    }
    if let Some(limit) = limits.memory {
        let mut m = LinuxMemory::default();
        m.set_limit(Some(limit as i64));
        m.set_swap(match limits.swap {
            Some(Swap::Unlimited) => Some(-1),
            Some(Swap::Total(t)) => Some(t as i64),
            Some(Swap::Default) if swap_accounted => Some(limit.saturating_mul(2) as i64),
            // Without swap accounting, -memory alone still limits memory.
            _ => None,
        });
        m.set_reservation(limits.memory_reservation.map(|r| r as i64));
        r.set_memory(Some(m));
    } else if let Some(res) = limits.memory_reservation {
        let mut m = LinuxMemory::default();
        m.set_reservation(Some(res as i64));
        r.set_memory(Some(m));
    }
    if limits.cpu_quota_us.is_some() || limits.cpu_shares.is_some() || limits.cpuset_cpus.is_some()
    {
        let mut c = LinuxCpu::default();
        if let Some(q) = limits.cpu_quota_us {
            c.set_quota(Some(q as i64));
            c.set_period(Some(CPU_PERIOD_US));
        }
        c.set_shares(limits.cpu_shares);
        c.set_cpus(limits.cpuset_cpus.clone());
        r.set_cpu(Some(c));
    }
    if let Some(n) = limits.pids {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        r.set_pids(Some(p));
    }
    if limits.blkio_weight.is_some() || !limits.read_bps.is_empty() || !limits.write_bps.is_empty()
    {
        let mut b = LinuxBlockIo::default();
        b.set_weight(limits.blkio_weight);
        let devices = |rates: &[DeviceRate]| {
            (!rates.is_empty()).then(|| {
                rates
                    .iter()
                    .filter_map(|d| {
                        LinuxThrottleDeviceBuilder::default()
                            .major(d.major as i64)
                            .minor(d.minor as i64)
                            .rate(d.bytes_per_second)
                            .build()
                            .ok()
                    })
                    .collect()
            })
        };
        b.set_throttle_read_bps_device(devices(&limits.read_bps));
        b.set_throttle_write_bps_device(devices(&limits.write_bps));
        r.set_block_io(Some(b));
    }
    r
}

/// Every device refused, then the `-device` ones allowed; libcgroups adds
/// docker's standard set (null, zero, full, tty, random, urandom, ptmx, pts,
/// console, tun) after these.
fn devices(asked: &[Device]) -> Vec<LinuxDeviceCgroup> {
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .typ(LinuxDeviceType::A)
        .access("rwm")
        .build();
    let allowed = asked.iter().map(|d| {
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(if d.kind == b'b' {
                LinuxDeviceType::B
            } else {
                LinuxDeviceType::C
            })
            .major(d.major as i64)
            .minor(d.minor as i64)
            .access(d.access.clone())
            .build()
    });
    std::iter::once(deny_all)
        .chain(allowed)
        .filter_map(Result::ok)
        .collect()
}
