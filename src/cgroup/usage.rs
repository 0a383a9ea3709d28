//! What a container's cgroup has used, read straight from its files: a few
//! small reads in the units psdock-ls shows (libcgroups' `stats()` reads every
//! controller, fails as a whole on one missing file, and gives CPU time in
//! nanoseconds on v1 but microseconds on v2).

use std::path::Path;

use super::host::Hierarchy;

/// Raw counters; CPU time is cumulative, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub cpu_ns: u64,
    pub memory: u64,
    /// None: no memory limit.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub oom_kills: u64,
}

fn read(dir: Option<std::path::PathBuf>, file: &str) -> Option<String> {
    std::fs::read_to_string(dir?.join(file)).ok()
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

fn keyed(text: Option<String>, key: &str) -> Option<u64> {
    text?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The counters of the cgroup at `path`; `None` once it is gone.
pub fn counters(path: &Path) -> Option<Counters> {
    let h = Hierarchy::probe().ok()?;
    let dir = |c: &str| h.dir(c, path).filter(|d| d.is_dir());
    // v1 reports "no limit" as the largest page-aligned number; v2 as "max".
    let limit = |n: Option<u64>| n.filter(|&n| n < 1 << 62);
    Some(if h.is_v2() {
        let d = || dir("memory");
        d()?;
        Counters {
            cpu_ns: keyed(read(d(), "cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
            memory: number(read(d(), "memory.current")).unwrap_or(0),
            memory_limit: limit(number(read(d(), "memory.max"))),
            pids: number(read(d(), "pids.current")).unwrap_or(0),
            oom_kills: keyed(read(d(), "memory.events"), "oom_kill").unwrap_or(0),
        }
    } else {
        dir("memory")?;
        Counters {
            cpu_ns: number(read(dir("cpuacct"), "cpuacct.usage")).unwrap_or(0),
            memory: number(read(dir("memory"), "memory.usage_in_bytes")).unwrap_or(0),
            memory_limit: limit(number(read(dir("memory"), "memory.limit_in_bytes"))),
            pids: number(read(dir("pids"), "pids.current")).unwrap_or(0),
            oom_kills: keyed(read(dir("memory"), "memory.oom_control"), "oom_kill").unwrap_or(0),
        }
    })
}
