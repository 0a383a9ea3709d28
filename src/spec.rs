//! `RunSpec`: the whole run as plain, validated data. Everything a run needs is
//! decided here, before the first directory or mount is made, so that bad input
//! leaves nothing behind.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::cli::Args;
use crate::fsutil;
use crate::plugin::NotifySpec;
use crate::user::{self, Identity};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("missing required flag -{0}")]
    Missing(&'static str),
    #[error("no command given (psdock -i IMAGE -r ROOTFS [OPTIONS] COMMAND)")]
    NoCommand,
    #[error("-image {}: {why}", .path.display())]
    Image { path: PathBuf, why: String },
    #[error("-rootfs {}: {why}", .path.display())]
    Rootfs { path: PathBuf, why: String },
    #[error("-env {}: {why}", .value.to_string_lossy())]
    Env { value: OsString, why: &'static str },
    #[error("-env-file {}: {why}", .path.display())]
    EnvFile { path: PathBuf, why: String },
    #[error("-cwd {}: must be an absolute path without `..`", .0.display())]
    Cwd(PathBuf),
    #[error("-hostname {0:?}: {1}")]
    Hostname(String, &'static str),
    #[error("-user {0}: {1}")]
    User(String, String),
    #[error("-bind-mount {}: {why}", .value.to_string_lossy())]
    Bind { value: OsString, why: String },
    #[error("command contains a NUL byte")]
    Nul,
    #[error("-{0} needs -{1}")]
    Needs(&'static str, &'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Canonical host path: it exists, and symlinks on the host side are resolved now.
    pub source: PathBuf,
    /// Absolute path inside the container, without `..`.
    pub target: PathBuf,
    pub readonly: bool,
}

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub image: PathBuf,
    pub rootfs: PathBuf,
    pub command: Vec<OsString>,
    /// `KEY=VALUE` entries in the order they were first set.
    pub env: Vec<OsString>,
    pub cwd: PathBuf,
    pub hostname: String,
    pub identity: Identity,
    pub binds: Vec<BindMount>,
    pub kill_timeout: Option<Duration>,
    /// `-web-hook` and its companions, with the per-request timeout.
    pub notify: Option<(NotifySpec, Duration)>,
    /// `-bind-port`, and `-port-probe` when one was named.
    pub bind_port: Option<(u16, Option<String>)>,
}

impl RunSpec {
    pub fn from_args(args: Args) -> Result<Self, SpecError> {
        let image = args.image.ok_or(SpecError::Missing("image (-i)"))?;
        let rootfs = args.rootfs.ok_or(SpecError::Missing("rootfs (-r)"))?;
        if args.command.is_empty() {
            return Err(SpecError::NoCommand);
        }
        if args.command.iter().any(|a| a.as_bytes().contains(&0)) {
            return Err(SpecError::Nul);
        }
        let image = check_image(&image)?;
        let notify = notify_spec(
            args.web_hook,
            args.web_hook_timeout,
            args.web_hook_secret,
            args.tls_ca,
        )?;
        let rootfs = check_rootfs(&rootfs, &image)?;
        let identity = match &args.user {
            None => Identity::root(
                &image_text(&image, "etc/passwd"),
                &image_text(&image, "etc/group"),
            ),
            Some(spec) => user::resolve(
                spec,
                &image_text(&image, "etc/passwd"),
                &image_text(&image, "etc/group"),
            )
            .map_err(|e| SpecError::User(spec.clone(), e.to_string()))?,
        };
        let mut env = Env::default();
        env.set(OsString::from(format!("PATH={DEFAULT_PATH}")));
        env.set(OsString::from("TERM=xterm"));
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
        let cwd = match args.cwd {
            Some(c) if c.is_absolute() && !c.components().any(|p| p == Component::ParentDir) => c,
            Some(c) => return Err(SpecError::Cwd(c)),
            None => PathBuf::from("/"),
        };
        let hostname = args.hostname.unwrap_or_else(|| "psdock".into());
        check_hostname(&hostname)?;
        // As in the seed: -bind-port only decides when `running` is notified.
        let bind_port = match (args.bind_port, args.port_probe) {
            (Some(_), _) if notify.is_none() => {
                return Err(SpecError::Needs("bind-port", "web-hook"))
            }
            (Some(port), probe) => Some((port, probe)),
            (None, Some(_)) => return Err(SpecError::Needs("port-probe", "bind-port")),
            (None, None) => None,
        };
        let binds = args
            .bind_mount
            .into_iter()
            .map(parse_bind)
            .collect::<Result<_, _>>()?;
        Ok(RunSpec {
            image,
            rootfs,
            command: args.command,
            env: env.0,
            cwd,
            hostname,
            identity,
            binds,
            kill_timeout: args.kill_timeout.map(Duration::from_secs),
            notify,
            bind_port,
        })
    }

    /// The value of `KEY` in the container's environment.
    pub fn env_var(&self, key: &str) -> Option<&OsStr> {
        self.env.iter().find_map(|e| {
            let rest = e
                .as_bytes()
                .strip_prefix(key.as_bytes())?
                .strip_prefix(b"=")?;
            Some(OsStr::from_bytes(rest))
        })
    }
}

/// The URL itself is the notifier's to check: it knows which schemes it speaks.
fn notify_spec(
    url: Option<String>,
    timeout: Option<u64>,
    secret: Option<String>,
    tls_ca: Option<PathBuf>,
) -> Result<Option<(NotifySpec, Duration)>, SpecError> {
    let Some(url) = url else {
        if secret.is_some() {
            return Err(SpecError::Needs("web-hook-secret", "web-hook"));
        }
        if timeout.is_some() {
            return Err(SpecError::Needs("web-hook-timeout", "web-hook"));
        }
        return Ok(None);
    };
    let timeout = timeout.map_or(crate::lifecycle::DEFAULT_TIMEOUT, Duration::from_secs);
    let spec = NotifySpec {
        url,
        secret,
        tls_ca,
    };
    Ok(Some((spec, timeout)))
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

fn check_image(path: &Path) -> Result<PathBuf, SpecError> {
    let err = |why: String| SpecError::Image {
        path: path.to_owned(),
        why,
    };
    let canonical = path.canonicalize().map_err(|e| err(e.to_string()))?;
    if !canonical.is_dir() {
        return Err(err("not a directory".into()));
    }
    Ok(canonical)
}

/// ROOTFS must be absent or an empty directory, in an existing parent, and must
/// neither contain the image nor lie inside it.
fn check_rootfs(path: &Path, image: &Path) -> Result<PathBuf, SpecError> {
    let err = |why: &str| SpecError::Rootfs {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n.to_owned(),
        _ => return Err(err("must name a directory")),
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| err(&format!("parent directory: {e}")))?;
    let rootfs = parent.join(name);
    match std::fs::symlink_metadata(&rootfs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(&e.to_string())),
        Ok(m) if !m.is_dir() => return Err(err("exists and is not a directory")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(&rootfs).map_err(|e| err(&e.to_string()))?;
            if entries.next().is_some() {
                return Err(err("exists and is not empty"));
            }
        }
    }
    if rootfs.starts_with(image) || image.starts_with(&rootfs) {
        return Err(err("must not overlap the image"));
    }
    Ok(rootfs)
}

/// A missing or unreadable file reads as empty: an image need not have users.
fn image_text(image: &Path, path: &str) -> String {
    fsutil::read_in_root(image, Path::new(path))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn check_hostname(name: &str) -> Result<(), SpecError> {
    let bad = |why| Err(SpecError::Hostname(name.to_owned(), why));
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if name.starts_with(['-', '.'])
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return bad("only letters, digits, `-` and `.` are allowed");
    }
    Ok(())
}

fn parse_bind(value: OsString) -> Result<BindMount, SpecError> {
    let err = |why: String| SpecError::Bind {
        value: value.clone(),
        why,
    };
    let parts: Vec<&[u8]> = value.as_bytes().split(|&b| b == b':').collect();
    let (source, target, readonly) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, b"ro"] => (*s, *t, true),
        [s, t, b"rw"] => (*s, *t, false),
        _ => return Err(err("expected HOST:CONTAINER[:ro|rw]".into())),
    };
    let source = Path::new(OsStr::from_bytes(source));
    let target = Path::new(OsStr::from_bytes(target));
    if !source.is_absolute() || !target.is_absolute() {
        return Err(err("both paths must be absolute".into()));
    }
    if target.components().any(|c| c == Component::ParentDir) {
        return Err(err("the container path must not contain `..`".into()));
    }
    if target.components().all(|c| c == Component::RootDir) {
        return Err(err("cannot mount over the container's /".into()));
    }
    let source = source
        .canonicalize()
        .map_err(|e| err(format!("source {}: {e}", source.display())))?;
    Ok(BindMount {
        source,
        target: target.to_owned(),
        readonly,
    })
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

    #[test]
    fn bind_mount_forms() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap();
        let b = parse_bind(format!("{src}:/data:ro").into()).unwrap();
        assert!(b.readonly);
        assert_eq!(b.target, Path::new("/data"));
        assert!(!parse_bind(format!("{src}:/data").into()).unwrap().readonly);
        assert!(
            !parse_bind(format!("{src}:/data:rw").into())
                .unwrap()
                .readonly
        );
        for bad in [
            format!("{src}:/data:rx"),
            src.to_string(),
            format!("{src}:data"),
            format!("{src}:/a/../b"),
            format!("{src}:/"),
            "/no/such/source:/data".to_owned(),
        ] {
            let e = parse_bind(bad.clone().into()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("-bind-mount {bad}: ")), "{e}");
        }
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.example").is_ok());
        assert!(check_hostname("").is_err());
        assert!(check_hostname("bad_name").is_err());
        assert!(check_hostname(&"a".repeat(65)).is_err());
    }
}
