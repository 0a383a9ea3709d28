//! `-stdio` and the flags that go with it, validated into a [`StdioSpec`]
//! before anything is created.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::prefix::Prefix;
use crate::cli::StdioArgs;

/// The sink used when `-stdio` is not given.
pub const DEFAULT_SCHEME: &str = "inherit";

/// Rotated archives kept when `-log-keep` is not given (the seed's number).
pub const DEFAULT_KEEP: usize = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StdioError {
    #[error(
        "-stdio {0}: expected SCHEME://TARGET (file:///path, tcp://host:port, tls://host:port)"
    )]
    Url(String),
    #[error("-stdout-prefix {value}: {why}")]
    Prefix { value: String, why: String },
    #[error("-log-rotate {0}: expected a positive number of hours, or a duration such as 30m, 10s or 1d")]
    Rotate(String),
    #[error("-log-keep needs -log-rotate")]
    KeepWithoutRotate,
    #[error("{flag} is not supported by -stdio {url}")]
    Unsupported { flag: &'static str, url: String },
    #[error("-tls-cert and -tls-key go together")]
    HalfClientCert,
}

/// When to rotate a log file, and how many archives to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub every: Duration,
    pub keep: usize,
}

/// Files and switches of `tls://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure: bool,
}

/// What `-stdio` and its flags asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioSpec {
    /// `-stdio` as given, for messages; `inherit` when absent.
    pub url: String,
    /// The sink's name: the URL's scheme.
    pub scheme: String,
    /// Everything after `SCHEME://`.
    pub target: String,
    pub prefix: Option<Prefix>,
    pub rotate: Option<Rotation>,
    pub tls: TlsFiles,
    /// Who the output is from, for the sinks that label it (journald, syslog).
    pub origin: Origin,
}

/// What a log sink says about the run: filled in by `RunSpec` (tag, name,
/// image) and, once the state entry exists, by the run (the id), which
/// is after the sink was opened but before its pump starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The command's name: the default tag.
    pub command: String,
    /// `-hostname`: what psdock has for a container name.
    pub name: String,
    pub image: String,
    pub id: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Default for StdioSpec {
    fn default() -> Self {
        Self {
            url: DEFAULT_SCHEME.into(),
            scheme: DEFAULT_SCHEME.into(),
            target: String::new(),
            prefix: None,
            rotate: None,
            tls: TlsFiles::default(),
            origin: Origin::default(),
        }
    }
}

impl StdioSpec {
    /// `no_color`: whether `NO_COLOR` is set (non-empty) in psdock's environment.
    pub fn from_args(args: &StdioArgs, no_color: bool) -> Result<Self, StdioError> {
        let mut spec = StdioSpec::default();
        if let Some(url) = &args.stdio {
            let (scheme, target) = url
                .split_once("://")
                .filter(|(s, t)| {
                    // The local log sinks need no target: `journald://`.
                    !s.is_empty()
                        && (!t.is_empty() || *s == "journald" || *s == "syslog")
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
                })
                .ok_or_else(|| StdioError::Url(url.clone()))?;
            spec.url = url.clone();
            spec.scheme = scheme.to_ascii_lowercase();
            spec.target = target.to_owned();
        }
        if let Some(value) = &args.stdout_prefix {
            spec.prefix =
                Some(
                    Prefix::parse(value, !no_color).map_err(|why| StdioError::Prefix {
                        value: value.clone(),
                        why,
                    })?,
                );
        }
        match (&args.log_rotate, args.log_keep) {
            (Some(every), keep) => {
                spec.rotate = Some(Rotation {
                    every: parse_interval(every)
                        .ok_or_else(|| StdioError::Rotate(every.clone()))?,
                    keep: keep.map_or(DEFAULT_KEEP, |k| k as usize),
                })
            }
            (None, Some(_)) => return Err(StdioError::KeepWithoutRotate),
            (None, None) => {}
        }
        if args.tls_cert.is_some() != args.tls_key.is_some() {
            return Err(StdioError::HalfClientCert);
        }
        spec.tls = TlsFiles {
            ca: args.tls_ca.clone(),
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
            insecure: args.tls_insecure,
        };
        Ok(spec)
    }

    /// Says who the output is from (see [`Origin`]).
    pub fn with_origin(mut self, command: &[std::ffi::OsString], name: &str, image: &Path) -> Self {
        let program = command.first().map(Path::new);
        self.origin = Origin {
            command: program
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            name: name.to_owned(),
            image: image.display().to_string(),
            id: Default::default(),
        };
        self
    }

    /// The sink-specific flags that were given, by name.
    fn given(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("-log-rotate", self.rotate.is_some()),
            ("-tls-ca", self.tls.ca.is_some()),
            ("-tls-cert", self.tls.cert.is_some()),
            ("-tls-insecure", self.tls.insecure),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
    }

    /// Refuses a sink-specific flag that the chosen sink does not take (a
    /// rotation for a tcp peer, a CA for a file), rather than ignoring it.
    pub fn check_flags(&self, supported: &[&str]) -> Result<(), StdioError> {
        match self.given().find(|flag| !supported.contains(flag)) {
            Some(flag) => Err(StdioError::Unsupported {
                flag,
                url: self.url.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// A bare number is hours, as in the seed (`1.5` too); otherwise a duration
/// with units (`30m`, `10s`, `1h30m`, `250ms`).
fn parse_interval(value: &str) -> Option<Duration> {
    let d = match value.trim().parse::<f64>() {
        Ok(hours) if hours.is_finite() && hours > 0.0 => {
            Duration::try_from_secs_f64(hours * 3600.0).ok()?
        }
        Ok(_) => return None,
        Err(_) => humantime::parse_duration(value).ok()?,
    };
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut StdioArgs)) -> StdioArgs {
        let mut a = StdioArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn urls_split_into_scheme_and_target() {
        let s = StdioSpec::from_args(&args(|a| a.stdio = Some("tcp://h:1".into())), false).unwrap();
        assert_eq!((s.scheme.as_str(), s.target.as_str()), ("tcp", "h:1"));
        let s =
            StdioSpec::from_args(&args(|a| a.stdio = Some("file:///a/b".into())), false).unwrap();
        assert_eq!(s.target, "/a/b");
        assert_eq!(
            StdioSpec::from_args(&StdioArgs::default(), false).unwrap(),
            StdioSpec::default()
        );
        for bad in ["/var/log/x", "file://", "://x", "a b://x"] {
            assert_eq!(
                StdioSpec::from_args(&args(|a| a.stdio = Some(bad.into())), false),
                Err(StdioError::Url(bad.into()))
            );
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_interval("0.5"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_interval("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_interval("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_interval("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_interval("250ms"), Some(Duration::from_millis(250)));
        for bad in ["0", "-1", "0s", "soon", "", "NaN", "inf"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    #[test]
    fn rotation_and_keep() {
        let s = StdioSpec::from_args(&args(|a| a.log_rotate = Some("1".into())), false).unwrap();
        assert_eq!(s.rotate.unwrap().keep, DEFAULT_KEEP);
        let s = StdioSpec::from_args(
            &args(|a| {
                a.log_rotate = Some("1".into());
                a.log_keep = Some(2)
            }),
            false,
        )
        .unwrap();
        assert_eq!(s.rotate.unwrap().keep, 2);
        assert_eq!(
            StdioSpec::from_args(&args(|a| a.log_keep = Some(2)), false),
            Err(StdioError::KeepWithoutRotate)
        );
        assert_eq!(
            StdioSpec::from_args(&args(|a| a.log_rotate = Some("x".into())), false)
                .unwrap_err()
                .to_string(),
            "-log-rotate x: expected a positive number of hours, or a duration such as 30m, 10s or 1d"
        );
    }

    #[test]
    fn sink_specific_flags_must_be_supported() {
        let s = StdioSpec::from_args(
            &args(|a| {
                a.stdio = Some("tcp://h:1".into());
                a.log_rotate = Some("1".into())
            }),
            false,
        )
        .unwrap();
        assert_eq!(
            s.check_flags(&["-tls-ca"]).unwrap_err().to_string(),
            "-log-rotate is not supported by -stdio tcp://h:1"
        );
        assert!(s.check_flags(&["-log-rotate"]).is_ok());
        let s = StdioSpec::from_args(&args(|a| a.tls_insecure = true), false).unwrap();
        assert_eq!(
            s.check_flags(&[]).unwrap_err().to_string(),
            "-tls-insecure is not supported by -stdio inherit"
        );
        assert_eq!(
            StdioSpec::from_args(&args(|a| a.tls_cert = Some("c".into())), false),
            Err(StdioError::HalfClientCert)
        );
    }
}
