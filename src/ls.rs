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
    let listed = state::list(&dir).map_err(|e| {
        // The state directory is root's (0700): for anyone else, the reason.
        let denied = matches!(&e, state::StateError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied);
        match crate::error::require_root() {
            Err(not_root) if denied => not_root,
            _ => Error::from(e),
        }
    })?;
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
        table(&mut out, &rows, args.all).map_err(LsError::Output)?;
    }
    flush(&out)?;
    Ok(0)
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
                restarts: None,
                last_exit: None,
            },
        })
    }
}

/// The seed's table, columns aligned; STATUS only with `--all`.
fn table(out: &mut Vec<u8>, rows: &[Row], all: bool) -> std::io::Result<()> {
    let mut tw = tabwriter::TabWriter::new(out).padding(2);
    let status = if all { "STATUS\t" } else { "" };
    writeln!(
        tw,
        "#\tCONTAINER_ID\tPID\tINIT_PID\t{status}RESTARTS\tROOTFS\tCOMMAND"
    )?;
    let dash = || "-".to_owned();
    for (n, r) in rows.iter().enumerate() {
        let status = if all {
            format!("{}\t", r.status)
        } else {
            String::new()
        };
        writeln!(
            tw,
            "{n}\t{}\t{}\t{}\t{status}{}\t{}\t{}",
            r.id,
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.init_pid.map_or_else(dash, |p| p.to_string()),
            r.restarts.map_or_else(dash, |n| n.to_string()),
            r.rootfs.as_deref().map_or_else(dash, printable),
            r.command.as_ref().map_or_else(dash, |c| c
                .iter()
                .map(|a| printable(a))
                .collect::<Vec<_>>()
                .join(" ")),
        )?;
    }
    tw.flush()
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
