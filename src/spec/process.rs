//! The process to run, as psdock and psdock-exec both take it: the command,
//! its environment, working directory and user.

use std::ffi::{OsStr, OsString};
use std::io::BufRead;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::SpecError;
use crate::cli::ProcessArgs;
use crate::fsutil;
use crate::image::ImageConfig;
use crate::user::{self, Identity};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub command: Vec<OsString>,
    /// `KEY=VALUE` entries in the order they were first set.
    pub env: Vec<OsString>,
    pub cwd: PathBuf,
    pub identity: Identity,
}

impl ProcessSpec {
    /// `passwd` and `group` are the text of the container's own files; the
    /// image's Env, User and WorkingDir go under the flags.
    pub fn from_args(
        args: ProcessArgs,
        command: Vec<OsString>,
        passwd: impl BufRead,
        group: impl BufRead,
        image: &ImageConfig,
    ) -> Result<Self, SpecError> {
        check_command(&command)?;
        let identity = match (&args.user, &image.user) {
            (None, None) => Identity::root(passwd, group),
            (Some(spec), _) => user::resolve(spec, passwd, group)
                .map_err(|e| SpecError::User(spec.clone(), e.to_string()))?,
            (None, Some(spec)) => user::resolve(spec, passwd, group)
                .map_err(|e| SpecError::ImageUser(spec.clone(), e.to_string()))?,
        };
        let mut env = Env::default();
        env.set(OsString::from(format!("PATH={DEFAULT_PATH}")));
        env.set(OsString::from("TERM=xterm"));
        for entry in &image.env {
            // Set as they are: a bare KEY means nothing in an image.
            if entry.contains('=') && !entry.starts_with('=') && !entry.contains('\0') {
                env.set(entry.into());
            }
        }
        for file in &args.env_file {
            for entry in read_env_file(file)? {
                env.apply(entry);
            }
        }
        for entry in args.env {
            let key = entry
                .as_bytes()
                .split(|&b| b == b'=')
                .next()
                .unwrap_or_default();
            if key.is_empty() {
                return Err(SpecError::Env {
                    value: entry,
                    why: "empty variable name",
                });
            }
            if entry.as_bytes().contains(&0) {
                return Err(SpecError::Env {
                    value: entry,
                    why: "contains a NUL byte",
                });
            }
            env.apply(entry);
        }
        if !env.has("HOME") {
            let home = identity
                .home
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or("/");
            env.set(OsString::from(format!("HOME={home}")));
        }
        let cwd = match (args.cwd, &image.working_dir) {
            (Some(c), _) => check_cwd(c).map_err(SpecError::Cwd)?,
            (None, Some(w)) => check_cwd(PathBuf::from(w)).map_err(SpecError::ImageWorkingDir)?,
            (None, None) => PathBuf::from("/"),
        };
        Ok(ProcessSpec {
            command,
            env: env.0,
            cwd,
            identity,
        })
    }

    /// The value of `KEY` in the process's environment.
    pub fn env_var(&self, key: &str) -> Option<&OsStr> {
        env_var(&self.env, key)
    }
}

pub(super) fn check_command(command: &[OsString]) -> Result<(), SpecError> {
    if command.is_empty() {
        return Err(SpecError::NoCommand);
    }
    if command.iter().any(|a| a.as_bytes().contains(&0)) {
        return Err(SpecError::Nul);
    }
    Ok(())
}

/// The value of `KEY` in a list of `KEY=VALUE` entries.
pub fn env_var<'a>(env: &'a [OsString], key: &str) -> Option<&'a OsStr> {
    env.iter().find_map(|e| {
        let rest = e
            .as_bytes()
            .strip_prefix(key.as_bytes())?
            .strip_prefix(b"=")?;
        Some(OsStr::from_bytes(rest))
    })
}

/// The environment under construction: last write wins per key, first position kept.
#[derive(Default)]
struct Env(Vec<OsString>);

impl Env {
    fn key(entry: &OsStr) -> &[u8] {
        entry
            .as_bytes()
            .split(|&b| b == b'=')
            .next()
            .unwrap_or_default()
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|e| Self::key(e) == key.as_bytes())
    }

    fn set(&mut self, entry: OsString) {
        match self
            .0
            .iter_mut()
            .find(|e| Self::key(e) == Self::key(&entry))
        {
            Some(slot) => *slot = entry,
            None => self.0.push(entry),
        }
    }

    /// `KEY=VALUE` sets; a bare `KEY` copies psdock's own value, or unsets KEY
    /// when psdock has none.
    fn apply(&mut self, entry: OsString) {
        if entry.as_bytes().contains(&b'=') {
            return self.set(entry);
        }
        match std::env::var_os(&entry) {
            Some(value) => {
                let mut full = entry;
                full.push("=");
                full.push(value);
                self.set(full);
            }
            None => self.0.retain(|e| Self::key(e) != entry.as_bytes()),
        }
    }
}

fn read_env_file(path: &Path) -> Result<Vec<OsString>, SpecError> {
    let err = |why: String| SpecError::EnvFile {
        path: path.to_owned(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut entries = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii_start();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        let key = trimmed.split(|&b| b == b'=').next().unwrap_or_default();
        if key.is_empty() || key.iter().any(|b| b.is_ascii_whitespace()) || trimmed.contains(&0) {
            return Err(err(format!("line {}: expected KEY=VALUE or KEY", n + 1)));
        }
        entries.push(OsStr::from_bytes(trimmed).to_owned());
    }
    Ok(entries)
}

/// A working directory: absolute, without `..`.
fn check_cwd(cwd: PathBuf) -> Result<PathBuf, PathBuf> {
    if cwd.is_absolute() && !cwd.components().any(|p| p == Component::ParentDir) {
        Ok(cwd)
    } else {
        Err(cwd)
    }
}

/// The most psdock reads of `/etc/passwd` or `/etc/group`. 16 MiB is some
/// 200,000 users of 80 bytes: no real image comes near, and the image or the
/// container, not the user, chooses the size of these files (a sparse one
/// of 2 GiB costs the image nothing).
pub const MAX_USER_FILE: u64 = 16 << 20;

/// `/etc/passwd` or `/etc/group` (`path`) as `open` found it in `whose`
/// root, to be read a line at a time. A missing or unreadable file reads as
/// empty: an image need not have users. Too large a file is an error, naming
/// `-user` when given, else `what` (the image or the container).
pub fn user_file(
    open: std::io::Result<std::io::Take<std::fs::File>>,
    whose: &'static str,
    path: &'static str,
    user: Option<&str>,
    what: impl FnOnce() -> String,
) -> Result<Box<dyn BufRead>, SpecError> {
    match open {
        Ok(file) => Ok(Box::new(std::io::BufReader::new(file))),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            Err(SpecError::UserFileTooLarge {
                flag: user.map_or_else(what, |u| format!("-user {u}")),
                whose,
                path,
                max_mib: MAX_USER_FILE >> 20,
            })
        }
        Err(_) => Ok(Box::new(std::io::empty())),
    }
}

/// [`user_file`] from the root of the running container `id`
/// (`/proc/<pid>/root`), symlinks resolved inside it.
pub fn container_user_file(
    id: &str,
    root: &Path,
    path: &'static str,
    user: Option<&str>,
) -> Result<Box<dyn BufRead>, SpecError> {
    let open = fsutil::open_in_root_regular(root, Path::new(path), MAX_USER_FILE);
    user_file(open, "container", path, user, || id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_last_wins_per_key_and_bare_keys_copy_or_unset() {
        let mut env = Env::default();
        env.set("PATH=/bin".into());
        env.set("TERM=xterm".into());
        env.apply("TERM=dumb".into());
        env.apply("A=1,B=2".into());
        std::env::set_var("PSDOCK_TEST_BARE", "from host");
        env.apply("PSDOCK_TEST_BARE".into());
        env.apply("PATH".into()); // the test runner has a PATH
        env.set("GONE=x".into());
        env.apply("PSDOCK_TEST_SURELY_UNSET".into());
        env.apply("GONE_TOO".into());
        assert_eq!(env.0[1], "TERM=dumb");
        assert_eq!(env.0[2], "A=1,B=2");
        assert_eq!(env.0[3], "PSDOCK_TEST_BARE=from host");
        assert!(env.0[0].as_bytes().starts_with(b"PATH=") && env.0[0] != "PATH=/bin");
        assert!(env.has("GONE"));
        assert!(!env.has("PSDOCK_TEST_SURELY_UNSET"));
    }

    #[test]
    fn env_file_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# comment\n\nA=1\n  B=two words\r\nC=x=y\n").unwrap();
        assert_eq!(read_env_file(&f).unwrap(), ["A=1", "B=two words", "C=x=y"]);
        std::fs::write(&f, "A=1\nBAD KEY=2\n").unwrap();
        assert_eq!(
            read_env_file(&f).unwrap_err().to_string(),
            format!(
                "-env-file {}: line 2: expected KEY=VALUE or KEY",
                f.display()
            )
        );
    }
}
