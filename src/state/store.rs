//! The state directory: where it is, reading every entry in it without ever
//! failing on a bad one, and writing an entry whole.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::record::{Record, Status, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {}: {source}", .path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the state directory {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the state entry {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot record the container: {0}")]
    Process(std::io::Error),
    #[error("cannot reclaim {id}, left on -rootfs {}: {why}", .rootfs.display())]
    Reclaim {
        id: String,
        rootfs: PathBuf,
        why: super::ReclaimError,
    },
}

/// `/run/psdock`, or `$PSDOCK_STATE_DIR` when set, for psdock and every helper.
pub fn dir() -> PathBuf {
    match std::env::var_os("PSDOCK_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/run/psdock"),
    }
}

/// Whether `id` has the form of a container id: `psdock_` and 7 hex digits.
pub fn is_id(id: &str) -> bool {
    id.strip_prefix("psdock_")
        .is_some_and(|hex| hex.len() == 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One entry of the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
// A listing holds a handful of entries, read once: not worth a box each.
#[allow(clippy::large_enum_variant)]
pub enum Listed {
    Record(Box<Record>),
    /// Cannot be read as a record: truncated, corrupt, of another version, or
    /// not matching its file name.
    Broken {
        id: String,
        why: String,
    },
}

impl Listed {
    pub fn id(&self) -> &str {
        match self {
            Listed::Record(r) => &r.id,
            Listed::Broken { id, .. } => id,
        }
    }
}

/// Every entry, oldest first. A missing directory has none; an entry that
/// disappears while being read (its psdock just ended) is left out.
pub fn list(dir: &Path) -> Result<Vec<Listed>, StateError> {
    let err = |source| StateError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut listed = Vec::new();
    for entry in entries {
        let name = entry.map_err(err)?.file_name();
        let Some(id) = entry_id(&name) else { continue };
        if let Some(l) = read(dir, id) {
            listed.push(l);
        }
    }
    listed.sort_by(|a, b| {
        let key = |l: &Listed| match l {
            Listed::Record(r) => (r.started_at.clone(), r.id.clone()),
            Listed::Broken { id, .. } => (String::new(), id.clone()),
        };
        key(a).cmp(&key(b))
    });
    Ok(listed)
}

/// The entry of `id`, if there is one.
pub fn find(dir: &Path, id: &str) -> Option<Listed> {
    if !is_id(id) {
        return None;
    }
    read(dir, id)
}

/// The status of a listed record, `None` if it ended cleanly meanwhile. A
/// psdock removes its entry before it exits, so an entry read just before that
/// and judged after it would look stale: a stale verdict counts only if the
/// entry is still there, unchanged.
pub fn status(dir: &Path, record: &Record) -> Option<Status> {
    match record.status() {
        Status::Stale => {
            matches!(read(dir, &record.id), Some(Listed::Record(now)) if *now == *record)
                .then_some(Status::Stale)
        }
        status => Some(status),
    }
}

/// The id an entry's file name stands for; temporary files start with a dot.
fn entry_id(name: &OsStr) -> Option<&str> {
    let id = std::str::from_utf8(name.as_bytes())
        .ok()?
        .strip_suffix(".json")?;
    is_id(id).then_some(id)
}

pub(super) fn entry_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn read(dir: &Path, id: &str) -> Option<Listed> {
    let broken = |why: String| {
        Some(Listed::Broken {
            id: id.to_owned(),
            why,
        })
    };
    let text = match std::fs::read(entry_path(dir, id)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return broken(e.to_string()),
    };
    match serde_json::from_slice::<Record>(&text) {
        Ok(r) if r.version != VERSION => broken(format!("record version {}", r.version)),
        Ok(r) if r.id != id => broken(format!("holds the record of {}", r.id)),
        Ok(r) => Some(Listed::Record(Box::new(r))),
        Err(e) => broken(e.to_string()),
    }
}

/// Creates the state directory (0700) if it does not exist yet.
pub(super) fn create_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Dir {
            path: dir.to_owned(),
            source,
        })
}

/// Writes `record` whole: a temporary file (0600) renamed over the entry. With
/// `fresh`, the rename fails with `AlreadyExists` if the entry exists, which is
/// what keeps ids unique.
pub(super) fn write(dir: &Path, record: &Record, fresh: bool) -> Result<(), StateError> {
    let path = entry_path(dir, &record.id);
    let tmp = dir.join(format!(".{}.{}.tmp", record.id, std::process::id()));
    let err = |source| StateError::Write {
        path: path.clone(),
        source,
    };
    let text = serde_json::to_vec(record).map_err(|e| err(e.into()))?;
    let written = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text));
    let renamed = written.and_then(|()| {
        let flags = if fresh {
            nix::fcntl::RenameFlags::RENAME_NOREPLACE
        } else {
            nix::fcntl::RenameFlags::empty()
        };
        nix::fcntl::renameat2(None, &tmp, None, &path, flags).map_err(std::io::Error::from)
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map_err(err)
}

/// Temporary files left by writers that died before renaming them.
pub(super) fn leftover_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|name| {
            let Some(rest) = std::str::from_utf8(name.as_bytes())
                .ok()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".tmp"))
            else {
                return false;
            };
            let Some((id, pid)) = rest.rsplit_once('.') else {
                return false;
            };
            let writer_alive = pid
                .parse::<i32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            is_id(id) && !writer_alive
        })
        .map(|name| dir.join(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::ProcId;
    use crate::state::Created;

    pub(crate) fn record(id: &str) -> Record {
        Record {
            version: VERSION,
            id: id.into(),
            psdock: ProcId::current().unwrap(),
            init: None,
            image: "/img".into(),
            rootfs: "/r/root".into(),
            command: vec!["true".into()],
            caps: crate::container::caps::DEFAULT,
            started_at: "2026-01-02T03:04:05Z".into(),
            created: Created {
                mount: "/r/root".into(),
                rootfs_dir: true,
                sibling: "/r/.root.psdock".into(),
                upper: crate::rootfs::Upper::Tmpfs,
                cgroup: None,
            },
            seccomp: Default::default(),
            net: None,
            health: None,
            restarts: 0,
            last_exit: None,
        }
    }

    #[test]
    fn ids_have_the_seeds_form() {
        assert!(is_id("psdock_0a1b2c3"));
        assert!(!is_id("psdock_0a1b2c"));
        assert!(!is_id("psdock_0a1b2cz"));
        assert!(!is_id("../psdock_0a1b2c3"));
    }

    #[test]
    fn entries_are_written_whole_and_ids_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let r = record("psdock_0000001");
        write(dir.path(), &r, true).unwrap();
        let e = write(dir.path(), &r, true).unwrap_err();
        assert!(
            matches!(&e, StateError::Write { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{e}"
        );
        write(dir.path(), &r, false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(entry_path(dir.path(), &r.id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(list(dir.path()).unwrap(), [Listed::Record(Box::new(r))]);
        // No temporary file is left next to it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_entries_are_listed_as_broken_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = record("psdock_0000002");
        write(dir.path(), &good, true).unwrap();
        let full = serde_json::to_string(&record("psdock_0000003")).unwrap();
        std::fs::write(
            entry_path(dir.path(), "psdock_0000003"),
            &full[..full.len() / 2],
        )
        .unwrap();
        std::fs::write(entry_path(dir.path(), "psdock_0000004"), full.as_bytes()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join(".psdock_0000005.1.tmp"), "{").unwrap();
        let listed = list(dir.path()).unwrap();
        let ids: Vec<&str> = listed.iter().map(Listed::id).collect();
        assert_eq!(ids, ["psdock_0000003", "psdock_0000004", "psdock_0000002"]);
        assert!(matches!(&listed[0], Listed::Broken { .. }));
        assert!(matches!(&listed[1], Listed::Broken { why, .. } if why.contains("psdock_0000003")));
        assert_eq!(listed[2], Listed::Record(Box::new(good)));
        assert_eq!(find(dir.path(), "psdock_0000002"), Some(listed[2].clone()));
        assert_eq!(find(dir.path(), "../x"), None);
        assert_eq!(list(&dir.path().join("absent")).unwrap(), []);
    }
}
