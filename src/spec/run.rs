//! `RunSpec`: the whole run, assembled from the concerns beside it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::binds::{parse_bind, BindMount};
use super::process::{check_command, env_var, user_file, ProcessSpec, MAX_USER_FILE};
use super::SpecError;
use crate::cli::{Args, KillTimeout};
use crate::fsutil;
use crate::image::{self, Cache, ImageConfig, Layers};
use crate::plugin::{NotifySpec, RootfsDriver};
use crate::user::Identity;

/// `-kill-timeout` when none is given: docker stop's, so that a command that
/// ignores SIGTERM cannot keep psdock (and its mounts) forever.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// `-cap-add`/`-cap-drop` applied to the default set: bit N for capability N.
    pub caps: u64,
    /// How long after the first SIGINT/SIGTERM the command is killed; None: never.
    pub kill_timeout: Option<Duration>,
    pub stdio: crate::stdio::StdioSpec,
    /// `-web-hook` and its companions, with the per-request timeout.
    pub notify: Option<(NotifySpec, Duration)>,
    /// `-bind-port`, and `-port-probe` when one was named.
    pub bind_port: Option<(u16, Option<String>)>,
    /// `-seccomp`, compiled for the container's capabilities.
    pub seccomp: super::SeccompSpec,
    /// `-net` and the flags that go with it.
    pub net: super::NetSpec,
    /// `-health-cmd` and its companions, or the image's `Healthcheck`.
    pub health: Option<crate::health::HealthSpec>,
    /// `-memory`, `-cpus` and the other limits; none: no cgroup is made.
    pub limits: super::Limits,
    /// `-restart`, `-restart-delay`, `-restart-reset`.
    pub restart: crate::service::RestartSpec,
    /// `-init`: PID 1 is psdock's minimal init, the command its child.
    pub init: bool,
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
        let mut restart = args.restart.spec();
        let caps = super::caps::from_args(&args.cap_add, &args.cap_drop)?;
        let limits = super::Limits::from_args(&args.limits)?;
        // `-oom restart` restarts under the policy, `on-failure` when none
        // is given.
        if limits.oom == super::limits::OomStrategy::Restart && args.restart.restart.is_none() {
            restart.policy = crate::service::Policy::OnFailure(None);
        }
        let seccomp = super::SeccompSpec::from_arg(args.seccomp.as_deref(), caps)?;
        let net = super::NetSpec::from_args(&args.net)?;
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
        let health =
            crate::health::HealthSpec::from_args(args.health, opened.config.healthcheck.as_ref())?;
        let command = command(args.command, args.entrypoint, &opened.config)?;
        let user = args.process.user.as_deref();
        let passwd = image_user_file(&image, &layers, "/etc/passwd", user)?;
        let group = image_user_file(&image, &layers, "/etc/group", user)?;
        let process = ProcessSpec::from_args(args.process, command, passwd, group, &opened.config)?;
        let hostname = args.hostname.unwrap_or_else(|| "psdock".into());
        check_hostname(&hostname)?;
        let binds = args
            .bind_mount
            .into_iter()
            .map(parse_bind)
            .collect::<Result<_, _>>()?;
        let stdio = stdio.with_origin(&process.command, &hostname, &image);
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
            caps,
            kill_timeout: match args.kill_timeout {
                None => Some(DEFAULT_KILL_TIMEOUT),
                Some(KillTimeout::Seconds(s)) => Some(Duration::from_secs(s)),
                Some(KillTimeout::Never) => None,
            },
            stdio,
            notify,
            bind_port,
            seccomp,
            net,
            health,
            limits,
            restart,
            init: args.init,
        })
    }

    /// Whether an unhealthy container is stopped: only to be started again,
    /// so only under a restart policy (else nothing would follow the stop).
    pub fn stop_when_unhealthy(&self) -> bool {
        self.restart.policy != crate::service::Policy::No
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
    // As in the seed: -bind-port only decides when `running` is notified, to
    // the hook or to systemd (READY=1).
    let systemd = || std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
    let bind_port = match (args.bind_port, args.port_probe) {
        (Some(_), _) if notify.is_none() && !systemd() => {
            return Err(SpecError::Needs(
                "bind-port",
                "web-hook, or NOTIFY_SOCKET (a systemd Type=notify service)",
            ))
        }
        (Some(port), probe) => Some((port, probe)),
        (None, Some(_)) => return Err(SpecError::Needs("port-probe", "bind-port")),
        (None, None) => None,
    };
    Ok((notify, bind_port))
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

/// A user database file of `image` as the container will see it, read the same way.
fn image_user_file(
    image: &Path,
    layers: &Layers,
    path: &'static str,
    user: Option<&str>,
) -> Result<Box<dyn std::io::BufRead>, SpecError> {
    let open = layers.open(Path::new(path), MAX_USER_FILE);
    user_file(open, "image", path, user, || {
        format!("-image {}", image.display())
    })
}

fn check_hostname(name: &str) -> Result<(), SpecError> {
    let bad = |why| Err(SpecError::Hostname(name.to_owned(), why));
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    // Said apart: `-x` is made of allowed characters, and a value that looks
    // like a flag is the likelier mistake.
    if name.starts_with(['-', '.']) {
        return bad("must start with a letter or digit");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return bad("only letters, digits, `-` and `.` are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
