//! psdock-ls: the containers of this host from their state records, as a
//! table, JSON or ids; and `--prune`, which reclaims what killed psdocks left.

use std::ffi::OsString;
use std::io::Write;

use serde::Serialize;

use crate::cli::{self, LsArgs, Parsed};
use crate::error::Error;
use crate::state::{self, Listed, Status};

#[derive(Debug, thiserror::Error)]
pub enum LsError {
    #[error("cannot write the listing: {0}")]
    Output(std::io::Error),
    #[error("{0} stale entries could not be reclaimed")]
    Unreclaimed(usize),
}

/// psdock-ls's `main`: returns the process exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    crate::error::exit_code("psdock-ls", run(argv))
}

fn run(argv: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let args = match cli::parse_as::<LsArgs>(argv)? {
        Parsed::Run(args) => args,
        Parsed::Print(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    let dir = state::dir();
    let mut out = Vec::new();
    if args.prune {
        crate::error::require_root()?;
        let pruned = state::prune(&dir)?;
        for r in &pruned.reclaimed {
            if args.quiet {
                writeln!(out, "{}", r.id)
            } else {
                writeln!(out, "reclaimed {} ({})", r.id, r.rootfs.display())
            }
            .map_err(LsError::Output)?;
        }
        flush(&out)?;
        for (id, why) in &pruned.broken {
            eprintln!("psdock-ls: {id}: unreadable entry left in place ({why})");
        }
        for e in &pruned.failed {
            eprintln!("psdock-ls: {e}");
        }
        if !pruned.failed.is_empty() {
            return Err(LsError::Unreclaimed(pruned.failed.len()).into());
        }
        return Ok(0);
    }
    if args.stats {
        return stats(&dir, args.no_stream);
    }
    let listed = state::list(&dir).map_err(|e| {
        // The state directory is root's (0700): for anyone else, the reason.
        let denied = matches!(&e, state::StateError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied);
        match crate::error::require_root() {
            Err(not_root) if denied => not_root,
            _ => Error::from(e),
        }
    })?;
    let looked = std::time::Instant::now();
    let rows: Vec<Row> = listed
        .iter()
        .filter_map(|l| Row::of(&dir, l))
        // Between two attempts of -restart, a container is still up.
        .filter(|r| {
            args.all
                || [Status::Running, Status::Restarting]
                    .iter()
                    .any(|s| r.status == s.as_str())
        })
        .collect();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows).map_err(|e| LsError::Output(e.into()))?;
        out.push(b'\n');
    } else if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r.id).map_err(LsError::Output)?;
        }
    } else if rows.is_empty() {
        out.extend_from_slice(b"No psdock container running\n");
    } else {
        let cpu = cpu_sample(&listed, &rows, looked);
        table(&mut out, &rows, args.all, &cpu).map_err(LsError::Output)?;
    }
    flush(&out)?;
    Ok(0)
}

/// How long CPU use is sampled over: two reads of the counters this far apart.
const WINDOW: std::time::Duration = std::time::Duration::from_millis(200);

/// The table's CPU% of each row whose container has a cgroup, over
/// [`WINDOW`] from `looked` (when the rows' usage was read); psdock-ls waits
/// for it only when there is one.
fn cpu_sample(listed: &[Listed], rows: &[Row], looked: std::time::Instant) -> Vec<Option<f64>> {
    let limited = |r: &Row| r.usage.is_some_and(|u| u.source == "cgroup");
    if !rows.iter().any(limited) {
        return vec![None; rows.len()];
    }
    std::thread::sleep(WINDOW.saturating_sub(looked.elapsed()));
    let elapsed = looked.elapsed();
    rows.iter()
        .map(|row| {
            let before = row.usage.filter(|_| limited(row))?;
            let record = listed.iter().find_map(|l| match l {
                Listed::Record(r) if r.id == row.id => Some(r),
                _ => None,
            })?;
            let after = crate::usage::of(record)?;
            Some(crate::usage::cpu_percent(&before, &after, elapsed))
        })
        .collect()
}

/// `--stats`: each running container's usage over 0.2 s, refreshed every
/// second until psdock-ls is interrupted (or once, with `--no-stream`).
fn stats(dir: &std::path::Path, once: bool) -> Result<i32, Error> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let records: Vec<_> = state::list(dir)?
            .into_iter()
            .filter_map(|l| match l {
                Listed::Record(r) => Some(r),
                Listed::Broken { .. } => None,
            })
            .collect();
        let before: Vec<_> = records.iter().map(|r| crate::usage::of(r)).collect();
        let start = std::time::Instant::now();
        std::thread::sleep(WINDOW);
        let elapsed = start.elapsed();
        let rows: Vec<_> = records
            .iter()
            .zip(before)
            .filter_map(|(r, b)| {
                let (b, a) = (b?, crate::usage::of(r)?);
                Some((r.id.clone(), a, crate::usage::cpu_percent(&b, &a, elapsed)))
            })
            .collect();
        let mut out = Vec::new();
        if terminal && !once {
            // Home and clear, as docker stats redraws.
            out.extend_from_slice(b"\x1b[H\x1b[2J");
        }
        crate::usage::table(&mut out, &rows).map_err(LsError::Output)?;
        flush(&out)?;
        if once {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1) - WINDOW);
    }
}

/// Everything goes out in one write: a reader never sees half a listing, and a
/// closed pipe (`psdock-ls | head -1`) is not an error.
fn flush(out: &[u8]) -> Result<(), LsError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(LsError::Output(e)),
        _ => Ok(()),
    }
}

/// One container as `--json` shows it; unknown fields of a broken entry are null.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    pid: Option<i32>,
    init_pid: Option<i32>,
    rootfs: Option<String>,
    image: Option<String>,
    command: Option<Vec<String>>,
    started_at: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// `-net`: mode, address, bridge and published ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<crate::plugin::NetInfo>,
    /// With a health check: its state, failures in a row and last check.
    health: Option<Box<crate::health::HealthRecord>>,
    /// Running containers with a cgroup: the kernel's OOM kills so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_kills: Option<u64>,
    /// Running containers: the raw figures of `--stats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<crate::usage::Usage>,
    /// Under `-restart`: the restarts so far and the last attempt's exit code.
    restarts: Option<u32>,
    last_exit: Option<i32>,
}

impl Row {
    /// `None`: the container ended while it was being looked at.
    fn of(dir: &std::path::Path, listed: &Listed) -> Option<Row> {
        Some(match listed {
            Listed::Record(r) => Row {
                id: r.id.clone(),
                pid: Some(r.psdock.pid),
                init_pid: r.init.map(|i| i.pid),
                rootfs: Some(r.rootfs.to_string_lossy().into_owned()),
                image: Some(r.image.to_string_lossy().into_owned()),
                command: Some(
                    r.command
                        .iter()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect(),
                ),
                started_at: Some(r.started_at.clone()),
                status: state::status(dir, r)?.as_str(),
                error: None,
                net: r.net.clone(),
                health: r.health.clone(),
                usage: crate::usage::of(r),
                oom_kills: None,
                restarts: Some(r.restarts),
                last_exit: r.last_exit,
            },
            Listed::Broken { id, why } => Row {
                id: id.clone(),
                pid: None,
                init_pid: None,
                rootfs: None,
                image: None,
                command: None,
                started_at: None,
                status: "broken",
                error: Some(why.clone()),
                net: None,
                health: None,
                usage: None,
                oom_kills: None,
                restarts: None,
                last_exit: None,
            },
        })
        .map(|mut row| {
            row.oom_kills = row.usage.and_then(|u| u.oom_kills);
            row
        })
    }
}

/// The seed's table, columns aligned; STATUS only with `--all`, HEALTH only
/// when a container has a health check, CPU% MEM PIDS only when one has a
/// cgroup (`cpu`: its sampled CPU%, see [`cpu_sample`]).
fn table(out: &mut Vec<u8>, rows: &[Row], all: bool, cpu: &[Option<f64>]) -> std::io::Result<()> {
    let mut tw = tabwriter::TabWriter::new(out).padding(2);
    let status = if all { "STATUS\t" } else { "" };
    let checked = rows.iter().any(|r| r.health.is_some());
    let health = if checked { "HEALTH\t" } else { "" };
    let limited = cpu.iter().any(Option::is_some);
    let usage = if limited { "CPU%\tMEM\tPIDS\t" } else { "" };
    writeln!(
        tw,
        "#\tCONTAINER_ID\tPID\tINIT_PID\t{status}{health}RESTARTS\t{usage}ROOTFS\tNET\tPORTS\tCOMMAND"
    )?;
    let dash = || "-".to_owned();
    for (n, r) in rows.iter().enumerate() {
        let status = if all {
            format!("{}\t", r.status)
        } else {
            String::new()
        };
        let health = match &r.health {
            _ if !checked => String::new(),
            Some(h) => format!("{}\t", h.status.as_str()),
            None => "-\t".into(),
        };
        let usage = match (r.usage, cpu.get(n).copied().flatten()) {
            _ if !limited => String::new(),
            (Some(u), Some(cpu)) => format!(
                "{cpu:.2}%\t{} / {}\t{}\t",
                crate::usage::bytes(u.memory_bytes),
                u.memory_limit_bytes.map_or_else(dash, crate::usage::bytes),
                u.pids
            ),
            _ => "-\t-\t-\t".into(),
        };
        writeln!(
            tw,
            "{n}\t{}\t{}\t{}\t{status}{health}{}\t{usage}{}\t{}\t{}\t{}",
            r.id,
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.init_pid.map_or_else(dash, |p| p.to_string()),
            r.restarts.map_or_else(dash, |n| n.to_string()),
            r.rootfs.as_deref().map_or_else(dash, printable),
            r.net.as_ref().map_or_else(|| "host".to_owned(), net_cell),
            r.net.as_ref().map_or_else(dash, ports_cell),
            r.command.as_ref().map_or_else(dash, |c| c
                .iter()
                .map(|a| printable(a))
                .collect::<Vec<_>>()
                .join(" ")),
        )?;
    }
    tw.flush()
}

/// The NET cell: the mode, or the container's address on its bridge.
fn net_cell(net: &crate::plugin::NetInfo) -> String {
    match net.address {
        Some(ip) => ip.to_string(),
        None => net.mode.clone(),
    }
}

/// The PORTS cell, as `docker ps` writes it: `0.0.0.0:8080->80/tcp`.
fn ports_cell(net: &crate::plugin::NetInfo) -> String {
    if net.ports.is_empty() {
        return "-".into();
    }
    net.ports
        .iter()
        .map(|p| {
            let at = std::net::SocketAddr::new(p.host_ip, p.host_port);
            format!("{at}->{}/{}", p.container_port, p.proto.as_str())
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A cell of the table: control characters (a tab would break the columns, a
/// newline the rows) are shown escaped.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_in_cells() {
        assert_eq!(printable("a b"), "a b");
        assert_eq!(printable("a\tb\nc\0"), "a\\tb\\nc\\u{0}");
    }
}
