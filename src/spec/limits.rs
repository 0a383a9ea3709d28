//! `-memory`, `-cpus` and the other resource limits: docker's names, units and
//! meanings, validated into plain numbers. Whether the host can apply them is
//! `cgroup`'s to say; this only checks what the values mean.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::cli::LimitArgs;

/// cgroup v1's CPU period, as docker and runc set it with `-cpus`.
pub const CPU_PERIOD_US: u64 = 100_000;
/// docker's smallest `-memory`: a container below it cannot even start.
const MIN_MEMORY: u64 = 6 << 20;

#[derive(Debug, thiserror::Error)]
#[error("-{flag} {value}: {why}")]
pub struct LimitError {
    pub flag: &'static str,
    pub value: String,
    pub why: String,
}

/// Memory plus swap (`-memory-swap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Not given: docker's default, as much swap as memory, where the host
    /// accounts for swap at all.
    Default,
    Unlimited,
    /// Memory plus swap, in bytes; equal to the memory limit: no swap.
    Total(u64),
}

/// A rate limit on one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRate {
    pub major: u64,
    pub minor: u64,
    pub bytes_per_second: u64,
}

/// What to do when a process of the container is OOM-killed (`-oom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OomStrategy {
    /// Send an `oom` event and carry on.
    #[default]
    Notify,
    /// End the whole container.
    Kill,
    /// `kill`, then start again under the restart policy; until psdock has
    /// one, the same as `kill`.
    Restart,
}

impl OomStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            OomStrategy::Notify => "notify",
            OomStrategy::Kill => "kill",
            OomStrategy::Restart => "restart",
        }
    }
}

/// A host device node let in with `-device`: made at the same path in the
/// container's /dev, and allowed by the devices cgroup with `access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: std::path::PathBuf,
    /// `b'c'` or `b'b'`.
    pub kind: u8,
    pub major: u64,
    pub minor: u64,
    /// The host node's permission bits.
    pub mode: u32,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

/// The limits asked for; [`Limits::any`] says whether a cgroup is needed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub swap: Option<Swap>,
    pub memory_reservation: Option<u64>,
    /// `-cpus` as a quota per [`CPU_PERIOD_US`].
    pub cpu_quota_us: Option<u64>,
    /// `-cpu-shares`, or `-cpu-weight` translated: the v1 unit, which
    /// libcgroups translates on v2.
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub read_bps: Vec<DeviceRate>,
    pub write_bps: Vec<DeviceRate>,
    /// `-oom`: watched whenever there is a cgroup.
    pub oom: OomStrategy,
    /// `-device`: needs the devices cgroup, so it makes a cgroup too.
    pub devices: Vec<Device>,
}

impl Limits {
    pub fn any(&self) -> bool {
        *self != Limits::default()
    }

    pub fn from_args(args: &LimitArgs) -> Result<Limits, LimitError> {
        let memory = args
            .memory
            .as_deref()
            .map(|v| bytes("memory", v))
            .transpose()?;
        if let (Some(m), Some(v)) = (memory, &args.memory) {
            if m < MIN_MEMORY {
                return Err(bad("memory", v, "must be at least 6m"));
            }
        }
        let swap = match args.memory_swap.as_deref() {
            None => memory.map(|_| Swap::Default),
            Some(v) if memory.is_none() => {
                return Err(bad("memory-swap", v, "needs -memory"));
            }
            Some("-1") => Some(Swap::Unlimited),
            Some(v) => {
                let total = bytes("memory-swap", v)?;
                if memory.is_some_and(|m| total < m) {
                    return Err(bad(
                        "memory-swap",
                        v,
                        "is memory plus swap: must be at least -memory, or -1",
                    ));
                }
                Some(Swap::Total(total))
            }
        };
        let memory_reservation = match args.memory_reservation.as_deref() {
            None => None,
            Some(v) => {
                let r = bytes("memory-reservation", v)?;
                if memory.is_some_and(|m| r > m) {
                    return Err(bad("memory-reservation", v, "must not be above -memory"));
                }
                Some(r)
            }
        };
        let cpu_quota_us = args.cpus.as_deref().map(cpus).transpose()?;
        let cpu_shares = match (&args.cpu_shares, &args.cpu_weight) {
            (Some(_), Some(w)) => {
                return Err(bad(
                    "cpu-weight",
                    w,
                    "give -cpu-shares or -cpu-weight, not both",
                ))
            }
            (Some(v), None) => Some(ranged("cpu-shares", v, 2, 262_144)?),
            (None, Some(v)) => Some(weight_to_shares(ranged("cpu-weight", v, 1, 10_000)?)),
            (None, None) => None,
        };
        let cpuset_cpus = args
            .cpuset_cpus
            .as_deref()
            .map(|v| cpu_list("cpuset-cpus", v).map(|()| v.to_owned()))
            .transpose()?;
        let pids = match args.pids_limit.as_deref() {
            None => None,
            // docker's "unlimited": no cgroup needed for it.
            Some("-1") | Some("0") => None,
            Some(v) => Some(ranged("pids-limit", v, 1, i64::MAX as u64)? as i64),
        };
        let blkio_weight = args
            .blkio_weight
            .as_deref()
            .map(|v| ranged("blkio-weight", v, 10, 1000).map(|w| w as u16))
            .transpose()?;
        let rates = |flag, values: &[String]| {
            values
                .iter()
                .map(|v| device_rate(flag, v))
                .collect::<Result<Vec<_>, _>>()
        };
        let oom = match args.oom.as_deref() {
            None | Some("notify") => OomStrategy::Notify,
            Some(v @ ("kill" | "restart")) if memory.is_none() => {
                return Err(bad("oom", v, "needs -memory"))
            }
            Some("kill") => OomStrategy::Kill,
            Some("restart") => OomStrategy::Restart,
            Some(v) => return Err(bad("oom", v, "must be notify, kill or restart")),
        };
        let devices = args
            .device
            .iter()
            .map(|v| device(v))
            .collect::<Result<_, _>>()?;
        Ok(Limits {
            devices,
            oom,
            memory,
            swap,
            memory_reservation,
            cpu_quota_us,
            cpu_shares,
            cpuset_cpus,
            pids,
            blkio_weight,
            read_bps: rates("device-read-bps", &args.device_read_bps)?,
            write_bps: rates("device-write-bps", &args.device_write_bps)?,
        })
    }
}

fn bad(flag: &'static str, value: &str, why: impl Into<String>) -> LimitError {
    LimitError {
        flag,
        value: value.to_owned(),
        why: why.into(),
    }
}

/// docker's byte sizes: a whole number, or a decimal one followed by b, k, m,
/// g, t or p (binary multiples, any case, an optional trailing `b`/`ib`).
pub fn bytes(flag: &'static str, value: &str) -> Result<u64, LimitError> {
    let why = "must be a size in bytes, or a number with b, k, m, g (e.g. 512m)";
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let shift = match unit.trim_start() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return Err(bad(flag, value, why)),
    };
    let n: f64 = match number.parse() {
        Ok(n) if !number.is_empty() && !number.starts_with('.') => n,
        _ => return Err(bad(flag, value, why)),
    };
    let total = n * (1u64 << shift) as f64;
    if !(1.0..=(i64::MAX as f64)).contains(&total) {
        return Err(bad(
            flag,
            value,
            "must be at least 1 byte and fit in 63 bits",
        ));
    }
    Ok(total as u64)
}

/// `-cpus`: at least 0.01 and no more than the host's CPUs, as docker says.
fn cpus(value: &str) -> Result<u64, LimitError> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let why = format!("must be a number of CPUs from 0.01 to {online}");
    let n: f64 = value.parse().map_err(|_| bad("cpus", value, why.clone()))?;
    if !(0.01..=online as f64).contains(&n) {
        return Err(bad("cpus", value, why));
    }
    Ok((n * CPU_PERIOD_US as f64).round() as u64)
}

fn ranged(flag: &'static str, value: &str, min: u64, max: u64) -> Result<u64, LimitError> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            flag,
            value,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

/// v2's weight (1..10000) in v1's shares (2..262144): the inverse of the
/// mapping runc and libcgroups use the other way.
fn weight_to_shares(weight: u64) -> u64 {
    2 + (weight - 1) * 262_142 / 9_999
}

/// A CPU list as cgroups take it: `0-1,3`, each CPU one this host has.
fn cpu_list(flag: &'static str, value: &str) -> Result<(), LimitError> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let why = format!(
        "must be a list of CPUs from 0 to {} such as 0-1,3",
        online - 1
    );
    let cpu = |s: &str| s.parse::<u64>().ok().filter(|&c| c < online);
    for part in value.split(',') {
        let ok = match part.split_once('-') {
            Some((a, b)) => matches!((cpu(a), cpu(b)), (Some(a), Some(b)) if a <= b),
            None => cpu(part).is_some(),
        };
        if !ok {
            return Err(bad(flag, value, why));
        }
    }
    Ok(())
}

/// `DEV:RATE`: a block device of the host and a byte rate.
fn device_rate(flag: &'static str, value: &str) -> Result<DeviceRate, LimitError> {
    let (dev, rate) = value
        .rsplit_once(':')
        .ok_or_else(|| bad(flag, value, "must be DEVICE:RATE, e.g. /dev/sda:1mb"))?;
    let meta = std::fs::metadata(Path::new(dev))
        .map_err(|e| bad(flag, value, format!("cannot read {dev}: {e}")))?;
    if !meta.file_type().is_block_device() {
        return Err(bad(flag, value, format!("{dev} is not a block device")));
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    Ok(DeviceRate {
        major: libc::major(rdev) as u64,
        minor: libc::minor(rdev) as u64,
        bytes_per_second: bytes(flag, rate)?,
    })
}

/// `PATH[:rwm]`: a device node of the host under /dev.
fn device(value: &str) -> Result<Device, LimitError> {
    let (path, access) = match value.rsplit_once(':') {
        Some((p, a)) => (p, a),
        None => (value, "rwm"),
    };
    let why = |w: String| bad("device", value, w);
    let mut seen = String::new();
    for c in access.chars() {
        if !"rwm".contains(c) || seen.contains(c) {
            return Err(why("access must be some of r, w and m".into()));
        }
        seen.push(c);
    }
    if seen.is_empty() {
        return Err(why("access must be some of r, w and m".into()));
    }
    let p = Path::new(path);
    if !p.starts_with("/dev/") || p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(why("must be a path under /dev without `..`".into()));
    }
    // The node itself, not what a link points at: its path in the container
    // is the one given.
    let meta = std::fs::symlink_metadata(p).map_err(|e| why(format!("cannot read {path}: {e}")))?;
    use std::os::unix::fs::MetadataExt;
    let kind = match meta.file_type() {
        t if t.is_char_device() => b'c',
        t if t.is_block_device() => b'b',
        _ => return Err(why(format!("{path} is not a device node"))),
    };
    Ok(Device {
        path: p.to_owned(),
        kind,
        major: libc::major(meta.rdev()) as u64,
        minor: libc::minor(meta.rdev()) as u64,
        mode: meta.mode() & 0o777,
        access: seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut LimitArgs)) -> Result<Limits, String> {
        let mut a = LimitArgs::default();
        f(&mut a);
        Limits::from_args(&a).map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_are_read_as_docker_reads_them() {
        assert_eq!(bytes("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(bytes("memory", "100").unwrap(), 100);
        assert_eq!(bytes("memory", "64kb").unwrap(), 64 << 10);
        for bad in ["", "m", "-1", "1x", "0", ".5m", "1e3", "1 2m"] {
            assert!(bytes("memory", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_asked_needs_no_cgroup() {
        assert!(!limits(|_| {}).unwrap().any());
        assert!(!limits(|a| a.pids_limit = Some("-1".into())).unwrap().any());
        assert!(limits(|a| a.pids_limit = Some("10".into())).unwrap().any());
    }

    #[test]
    fn memory_and_swap_follow_docker() {
        let l = limits(|a| a.memory = Some("64m".into())).unwrap();
        assert_eq!((l.memory, l.swap), (Some(64 << 20), Some(Swap::Default)));
        let l = limits(|a| {
            a.memory = Some("64m".into());
            a.memory_swap = Some("-1".into());
        })
        .unwrap();
        assert_eq!(l.swap, Some(Swap::Unlimited));
        let e = limits(|a| a.memory_swap = Some("64m".into())).unwrap_err();
        assert_eq!(e, "-memory-swap 64m: needs -memory");
        let e = limits(|a| {
            a.memory = Some("64m".into());
            a.memory_swap = Some("32m".into());
        })
        .unwrap_err();
        assert!(e.starts_with("-memory-swap 32m: "), "{e}");
        assert!(limits(|a| a.memory = Some("1m".into())).is_err());
    }

    #[test]
    fn cpus_become_a_quota_and_weights_become_shares() {
        let l = limits(|a| a.cpus = Some("0.5".into())).unwrap();
        assert_eq!(l.cpu_quota_us, Some(50_000));
        assert!(limits(|a| a.cpus = Some("0".into())).is_err());
        assert!(limits(|a| a.cpus = Some("100000".into())).is_err());
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(weight_to_shares(100), 2597);
        let e = limits(|a| {
            a.cpu_shares = Some("512".into());
            a.cpu_weight = Some("50".into());
        })
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn cpu_lists_and_device_rates_are_checked() {
        assert!(limits(|a| a.cpuset_cpus = Some("0".into())).is_ok());
        for bad in ["", "a", "1-0", "0-", "9999", "0,,1"] {
            assert!(
                limits(|a| a.cpuset_cpus = Some(bad.into())).is_err(),
                "{bad}"
            );
        }
        let e = limits(|a| a.device_read_bps = vec!["/dev/null:1mb".into()]).unwrap_err();
        assert_eq!(
            e,
            "-device-read-bps /dev/null:1mb: /dev/null is not a block device"
        );
        assert!(limits(|a| a.device_write_bps = vec!["nocolon".into()]).is_err());
    }

    #[test]
    fn devices_are_host_nodes_with_some_of_rwm() {
        let l = limits(|a| a.device = vec!["/dev/null:rw".into()]).unwrap();
        assert_eq!(
            (l.devices[0].kind, l.devices[0].major, l.devices[0].minor),
            (b'c', 1, 3)
        );
        assert_eq!(l.devices[0].access, "rw");
        assert!(l.any());
        for bad in [
            "/dev/null:x",
            "/dev/null:rr",
            "/dev/null:",
            "/etc/passwd",
            "/dev/../etc",
            "/dev/nonesuch",
            "dev/null",
        ] {
            assert!(limits(|a| a.device = vec![bad.into()]).is_err(), "{bad}");
        }
    }
}
