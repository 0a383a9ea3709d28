//! What a running container uses, for psdock-ls: its cgroup's counters when it
//! has one (a limit was asked for), else what /proc tells of its processes
//! (CPU time and resident memory summed over the init and its descendants),
//! marked as such: no limit applies, and memory shared between them is
//! counted once per process.

use std::io::Write;
use std::time::Duration;

use nix::unistd::Pid;
use serde::Serialize;

use crate::state::Record;

/// Raw figures; `cpu_ns` is cumulative, so CPU% takes two of them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// `cgroup` or `proc`.
    pub source: &'static str,
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub pids: u64,
    /// OOM kills in the container: known only with a cgroup.
    pub oom_kills: Option<u64>,
}

/// `None`: the container is not running (any more).
pub fn of(record: &Record) -> Option<Usage> {
    let init = record.init?;
    if !init.is_alive() {
        return None;
    }
    match &record.created.cgroup {
        Some(path) => crate::cgroup::counters(path).map(|c| Usage {
            source: "cgroup",
            cpu_ns: c.cpu_ns,
            memory_bytes: c.memory,
            memory_limit_bytes: c.memory_limit,
            pids: c.pids,
            oom_kills: Some(c.oom_kills),
        }),
        None => from_proc(Pid::from_raw(init.pid)),
    }
}

fn from_proc(init: Pid) -> Option<Usage> {
    let pids = crate::proctree::descendants(init).ok()?;
    // SAFETY: sysconf takes no pointer.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut usage = Usage {
        source: "proc",
        cpu_ns: 0,
        memory_bytes: 0,
        memory_limit_bytes: None,
        pids: 0,
        oom_kills: None,
    };
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // ended meanwhile
        };
        // After the command name, which may hold spaces: state is field 3,
        // utime and stime fields 14 and 15.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|s| s.split(' ').nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        usage.cpu_ns += ticks * 1_000_000_000 / tick;
        usage.memory_bytes += rss * page;
        usage.pids += 1;
    }
    Some(usage)
}

/// CPU use between two looks, in percent of one CPU (docker's convention:
/// two busy cores are 200%).
pub fn cpu_percent(before: &Usage, after: &Usage, elapsed: Duration) -> f64 {
    let ns = elapsed.as_nanos().max(1) as f64;
    after.cpu_ns.saturating_sub(before.cpu_ns) as f64 * 100.0 / ns
}

/// `12.3MiB` and the like.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// docker stats' table: one row per container, usage over the window.
pub fn table(out: &mut Vec<u8>, rows: &[(String, Usage, f64)]) -> std::io::Result<()> {
    let mut tw = tabwriter::TabWriter::new(out).padding(2);
    writeln!(tw, "CONTAINER_ID\tCPU%\tMEM USAGE / LIMIT\tMEM%\tPIDS")?;
    for (id, u, cpu) in rows {
        let (limit, percent) = match (u.memory_limit_bytes, u.source) {
            (Some(l), _) => (
                bytes(l),
                format!("{:.2}%", u.memory_bytes as f64 * 100.0 / l.max(1) as f64),
            ),
            (None, "proc") => ("- (rss, no cgroup)".to_owned(), "-".to_owned()),
            (None, _) => ("-".to_owned(), "-".to_owned()),
        };
        writeln!(
            tw,
            "{id}\t{cpu:.2}%\t{} / {limit}\t{percent}\t{}",
            bytes(u.memory_bytes),
            u.pids
        )?;
    }
    tw.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_read_as_docker_shows_them() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(64 << 20), "64.0MiB");
        assert_eq!(bytes(1536), "1.5KiB");
        let u = |cpu_ns| Usage {
            source: "cgroup",
            cpu_ns,
            memory_bytes: 0,
            memory_limit_bytes: None,
            pids: 1,
            oom_kills: Some(0),
        };
        let p = cpu_percent(&u(0), &u(100_000_000), Duration::from_millis(200));
        assert!((p - 50.0).abs() < 1e-9, "{p}");
    }
}
