//! `RunSpec`: the whole run as plain, validated data. Everything a run needs is
//! decided here, before the first directory or mount is made, so that bad input
//! leaves nothing behind.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::cli::{Args, ProcessArgs};
use crate::fsutil;
use crate::image::{self, Cache, ImageConfig, Layers};
use crate::plugin::{NotifySpec, RootfsDriver};
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
    #[error("-image: the image's WorkingDir {} is not an absolute path without `..`", .0.display())]
    ImageWorkingDir(PathBuf),
    #[error("-hostname {0:?}: {1}")]
    Hostname(String, &'static str),
    #[error("-user {0}: {1}")]
    User(String, String),
    #[error("-image: the image's User {0}: {1} (override with -user)")]
    ImageUser(String, String),
    #[error("-image {}: {source}", .path.display())]
    ImageContent {
        path: PathBuf,
        source: crate::image::ImageError,
    },
    #[error("-json: only with -list-drivers")]
    JsonWithoutList,
    #[error("-bind-mount {}: {why}", .value.to_string_lossy())]
    Bind { value: OsString, why: String },
    #[error("command contains a NUL byte")]
    Nul,
    #[error(transparent)]
    Stdio(#[from] crate::stdio::StdioError),
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
    /// What `-image` names, canonical.
    pub image: PathBuf,
    /// The image as read-only layers, top first (one, for an image directory).
    pub layers: Layers,
    pub rootfs: PathBuf,
    /// `-upper`: where the container's writes go.
    pub upper: crate::rootfs::Upper,
    pub command: Vec<OsString>,
    /// `KEY=VALUE` entries in the order they were first set.
    pub env: Vec<OsString>,
    pub cwd: PathBuf,
    pub hostname: String,
    pub identity: Identity,
    pub binds: Vec<BindMount>,
    pub kill_timeout: Option<Duration>,
    pub stdio: crate::stdio::StdioSpec,
    /// `-web-hook` and its companions, with the per-request timeout.
    pub notify: Option<(NotifySpec, Duration)>,
    /// `-bind-port`, and `-port-probe` when one was named.
    pub bind_port: Option<(u16, Option<String>)>,
}

/// The process to run, as psdock and psdock-exec both take it: the command,
/// its environment, working directory and user.
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
        passwd: &str,
        group: &str,
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

fn check_command(command: &[OsString]) -> Result<(), SpecError> {
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

impl RunSpec {
    /// Validates the command line and opens the image for `driver`: an OCI
    /// image or a tarball is unpacked into the layer cache here, before
    /// anything of the run exists.
    pub fn from_args(args: Args, driver: &dyn RootfsDriver) -> Result<Self, SpecError> {
        if args.json {
            return Err(SpecError::JsonWithoutList);
        }
        let image = args.image.ok_or(SpecError::Missing("image (-i)"))?;
        let rootfs = args.rootfs.ok_or(SpecError::Missing("rootfs (-r)"))?;
        if args.command.iter().any(|a| a.as_bytes().contains(&0))
            || args.entrypoint.as_ref().is_some_and(|e| e.contains('\0'))
        {
            return Err(SpecError::Nul);
        }
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdio = crate::stdio::StdioSpec::from_args(&args.stdio, no_color)?;
        let (notify, bind_port) = notify_spec(args.notify, &args.stdio.tls_ca)?;
        let image = check_image(&image)?;
        let cache = Cache::from_env();
        let rootfs = check_rootfs(&rootfs, &image, cache.root())?;
        let opened = image::open(
            &image,
            &image::Options {
                image_ref: args.image_ref.as_deref(),
                form: driver.whiteouts(),
                max_layers: driver.max_layers(),
                cache: &cache,
            },
        )
        .map_err(|source| SpecError::ImageContent {
            path: image.clone(),
            source,
        })?;
        let layers = opened.layers;
        let command = command(args.command, args.entrypoint, &opened.config)?;
        let process = ProcessSpec::from_args(
            args.process,
            command,
            &layers_text(&layers, "etc/passwd"),
            &layers_text(&layers, "etc/group"),
            &opened.config,
        )?;
        let hostname = args.hostname.unwrap_or_else(|| "psdock".into());
        check_hostname(&hostname)?;
        let binds = args
            .bind_mount
            .into_iter()
            .map(parse_bind)
            .collect::<Result<_, _>>()?;
        Ok(RunSpec {
            image,
            layers,
            rootfs,
            upper: args.upper.into(),
            command: process.command,
            env: process.env,
            cwd: process.cwd,
            hostname,
            identity: process.identity,
            binds,
            kill_timeout: args.kill_timeout.map(Duration::from_secs),
            stdio,
            notify,
            bind_port,
        })
    }

    /// The value of `KEY` in the container's environment.
    pub fn env_var(&self, key: &str) -> Option<&OsStr> {
        env_var(&self.env, key)
    }
}

/// `-web-hook`, its companions and `-bind-port`. The URL itself is the
/// notifier's to check: it knows which schemes it speaks.
#[allow(clippy::type_complexity)]
fn notify_spec(
    args: crate::cli::NotifyArgs,
    tls_ca: &Option<PathBuf>,
) -> Result<
    (
        Option<(NotifySpec, Duration)>,
        Option<(u16, Option<String>)>,
    ),
    SpecError,
> {
    let notify = match args.web_hook {
        Some(url) => {
            let timeout = args
                .web_hook_timeout
                .map_or(crate::lifecycle::DEFAULT_TIMEOUT, Duration::from_secs);
            let spec = NotifySpec {
                url,
                secret: args.web_hook_secret,
                tls_ca: tls_ca.clone(),
            };
            Some((spec, timeout))
        }
        None if args.web_hook_secret.is_some() => {
            return Err(SpecError::Needs("web-hook-secret", "web-hook"))
        }
        None if args.web_hook_timeout.is_some() => {
            return Err(SpecError::Needs("web-hook-timeout", "web-hook"))
        }
        None => None,
    };
    // As in the seed: -bind-port only decides when `running` is notified.
    let bind_port = match (args.bind_port, args.port_probe) {
        (Some(_), _) if notify.is_none() => return Err(SpecError::Needs("bind-port", "web-hook")),
        (Some(port), probe) => Some((port, probe)),
        (None, Some(_)) => return Err(SpecError::Needs("port-probe", "bind-port")),
        (None, None) => None,
    };
    Ok((notify, bind_port))
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
    let canonical = fsutil::canonicalize(path).map_err(|e| err(e.to_string()))?;
    if !canonical.is_dir() && !canonical.is_file() {
        return Err(err(
            "not a directory, an OCI image layout or a tarball".into()
        ));
    }
    Ok(canonical)
}

/// A working directory: absolute, without `..`.
fn check_cwd(cwd: PathBuf) -> Result<PathBuf, PathBuf> {
    if cwd.is_absolute() && !cwd.components().any(|p| p == Component::ParentDir) {
        Ok(cwd)
    } else {
        Err(cwd)
    }
}

/// The command as docker builds it: the entrypoint (the image's, or
/// `-entrypoint`'s, "" for none), then the given command, else the image's Cmd
/// (which `-entrypoint` drops, as it was written for the image's entrypoint).
fn command(
    given: Vec<OsString>,
    entrypoint: Option<String>,
    config: &ImageConfig,
) -> Result<Vec<OsString>, SpecError> {
    let replaced = entrypoint.is_some();
    let mut command: Vec<OsString> = match entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.into()],
        None => config.entrypoint.iter().map(Into::into).collect(),
    };
    if !given.is_empty() {
        command.extend(given);
    } else if !replaced {
        command.extend(config.cmd.iter().map(Into::into));
    }
    check_command(&command)?;
    Ok(command)
}

/// ROOTFS must be absent or an empty directory, in an existing parent, and must
/// neither contain the image or the layer cache nor lie inside either.
fn check_rootfs(path: &Path, image: &Path, cache: &Path) -> Result<PathBuf, SpecError> {
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
    let parent =
        fsutil::canonicalize(parent).map_err(|e| err(&format!("parent directory: {e}")))?;
    let rootfs = parent.join(name);
    match std::fs::symlink_metadata(&rootfs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(&e.to_string())),
        Ok(m) if !m.is_dir() => return Err(err("exists and is not a directory")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(&rootfs).map_err(|e| err(&e.to_string()))?;
            // With a sibling, the rootfs is most likely another psdock's mount:
            // `rootfs::prepare` tells in use from left behind by its lock, and
            // touches nothing either way (a left one is reclaimed there).
            let sibling = std::fs::symlink_metadata(crate::rootfs::sibling_of(&rootfs)).is_ok();
            if entries.next().is_some() && !sibling {
                return Err(err("exists and is not empty"));
            }
        }
    }
    if rootfs.starts_with(image) || image.starts_with(&rootfs) {
        return Err(err("must not overlap the image"));
    }
    let cache = fsutil::canonicalize(cache).unwrap_or_else(|_| cache.to_owned());
    if rootfs.starts_with(&cache) || cache.starts_with(&rootfs) {
        return Err(err("must not overlap the layer cache"));
    }
    Ok(rootfs)
}

/// A file of a container's root (an image, or a running container's
/// `/proc/<pid>/root`), symlinks resolved inside it. A missing or unreadable
/// file reads as empty: an image need not have users.
pub fn root_text(image: &Path, path: &str) -> String {
    fsutil::read_in_root(image, Path::new(path))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A file of the image as the container will see it, read the same way.
fn layers_text(layers: &Layers, path: &str) -> String {
    layers
        .read(Path::new(path))
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
    let source = fsutil::canonicalize(source)
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
    fn command_is_entrypoint_then_given_command_or_cmd() {
        let config = ImageConfig {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["echo cmd".into()],
            ..ImageConfig::default()
        };
        let run = |given: &[&str], entrypoint: Option<&str>| {
            let given = given.iter().map(OsString::from).collect();
            command(given, entrypoint.map(str::to_owned), &config)
        };
        assert_eq!(run(&[], None).unwrap(), ["/bin/sh", "-c", "echo cmd"]);
        assert_eq!(
            run(&["echo hi"], None).unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(run(&["x"], Some("/bin/echo")).unwrap(), ["/bin/echo", "x"]);
        assert_eq!(run(&[], Some("/bin/true")).unwrap(), ["/bin/true"]);
        assert_eq!(run(&["id"], Some("")).unwrap(), ["id"]);
        assert!(matches!(run(&[], Some("")), Err(SpecError::NoCommand)));
        let none = command(Vec::new(), None, &ImageConfig::default());
        assert!(matches!(none, Err(SpecError::NoCommand)));
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web-1.example").is_ok());
        assert!(check_hostname("").is_err());
        assert!(check_hostname("bad_name").is_err());
        assert!(check_hostname(&"a".repeat(65)).is_err());
    }
}
