//! The health check a run asked for: the flags over the image's `Healthcheck`.

use std::ffi::OsString;
use std::time::Duration;

use crate::cli::HealthArgs;
use crate::image::ImageHealthcheck;

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("-health-cmd {0:?}: must not be empty (none turns the image's check off)")]
    EmptyCommand(String),
    #[error("-image: the image's Healthcheck Test {test:?}: {why} (override with -health-cmd)")]
    ImageTest {
        test: Vec<String>,
        why: &'static str,
    },
    #[error("-{0} needs a health check (-health-cmd, or an image that has one)")]
    NoCheck(&'static str),
    #[error("-image: the image's Healthcheck {field} {ns} ns: must be at least 1 ms, as docker requires (override with -health-{flag})")]
    ImageTime {
        field: &'static str,
        flag: &'static str,
        ns: u128,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// What runs in the container: `/bin/sh -c CMD`, or the image's exec form.
    pub command: Vec<OsString>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl HealthSpec {
    /// The check to run, if any: `-health-cmd` (`none`: no check) or else the
    /// image's, with each time and count from its flag, else from the image,
    /// else docker's default.
    pub fn from_args(
        args: HealthArgs,
        image: Option<&ImageHealthcheck>,
    ) -> Result<Option<HealthSpec>, HealthError> {
        let command = match args.health_cmd.as_deref() {
            Some("none") | Some("NONE") => None,
            Some(cmd) if cmd.trim().is_empty() => {
                return Err(HealthError::EmptyCommand(cmd.to_owned()))
            }
            Some(cmd) => Some(shell(cmd)),
            None => image.map(image_test).transpose()?.flatten(),
        };
        let Some(command) = command else {
            let given = [
                (args.health_interval.is_some(), "health-interval"),
                (args.health_timeout.is_some(), "health-timeout"),
                (args.health_retries.is_some(), "health-retries"),
                (args.health_start_period.is_some(), "health-start-period"),
            ];
            return match given.iter().find(|(set, _)| *set) {
                Some((_, flag)) if args.health_cmd.is_none() => Err(HealthError::NoCheck(flag)),
                _ => Ok(None),
            };
        };
        let image = image.cloned().unwrap_or_default();
        // The image's times count only where no flag replaces them.
        for (given, time, field, flag) in [
            (args.health_interval, image.interval, "Interval", "interval"),
            (args.health_timeout, image.timeout, "Timeout", "timeout"),
        ] {
            match (given, time) {
                (None, Some(t)) if t < Duration::from_millis(1) => {
                    return Err(HealthError::ImageTime {
                        field,
                        flag,
                        ns: t.as_nanos(),
                    })
                }
                _ => {}
            }
        }
        Ok(Some(HealthSpec {
            command,
            interval: args
                .health_interval
                .or(image.interval)
                .unwrap_or(DEFAULT_INTERVAL),
            timeout: args
                .health_timeout
                .or(image.timeout)
                .unwrap_or(DEFAULT_TIMEOUT),
            start_period: args
                .health_start_period
                .or(image.start_period)
                .unwrap_or_default(),
            retries: args
                .health_retries
                .or(image.retries)
                .unwrap_or(DEFAULT_RETRIES),
        }))
    }
}

fn shell(cmd: &str) -> Vec<OsString> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

/// The image's `Test`: `None` for no check (`NONE`, or none set).
fn image_test(h: &ImageHealthcheck) -> Result<Option<Vec<OsString>>, HealthError> {
    let bad = |why| HealthError::ImageTest {
        test: h.test.clone(),
        why,
    };
    // The image is not to be trusted: a NUL would end the argument early.
    if h.test.iter().any(|a| a.contains('\0')) {
        return Err(bad("contains a NUL byte"));
    }
    match h.test.split_first() {
        None => Ok(None),
        Some((kind, _)) if kind == "NONE" => Ok(None),
        Some((kind, [cmd])) if kind == "CMD-SHELL" => Ok(Some(shell(cmd))),
        Some((kind, _)) if kind == "CMD-SHELL" => Err(bad("CMD-SHELL takes one command string")),
        Some((kind, [])) if kind == "CMD" => Err(bad("CMD without a command")),
        Some((kind, argv)) if kind == "CMD" => Ok(Some(argv.iter().map(Into::into).collect())),
        Some(_) => Err(bad("must start with NONE, CMD or CMD-SHELL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(test: &[&str]) -> ImageHealthcheck {
        ImageHealthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval: Some(Duration::from_secs(5)),
            retries: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let args = HealthArgs {
            health_retries: Some(2),
            ..Default::default()
        };
        let spec = HealthSpec::from_args(args, Some(&image(&["CMD", "true", "x"])))
            .unwrap()
            .unwrap();
        assert_eq!(spec.command, ["true", "x"]);
        assert_eq!(spec.interval, Duration::from_secs(5));
        assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
        assert_eq!(spec.retries, 2);
        let args = HealthArgs {
            health_cmd: Some("test -e /ok".into()),
            ..Default::default()
        };
        let spec = HealthSpec::from_args(args, Some(&image(&["CMD-SHELL", "x"])))
            .unwrap()
            .unwrap();
        assert_eq!(spec.command, ["/bin/sh", "-c", "test -e /ok"]);
    }

    #[test]
    fn none_turns_the_image_check_off_and_bad_tests_are_refused() {
        let none = HealthArgs {
            health_cmd: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(
            HealthSpec::from_args(none, Some(&image(&["CMD", "x"]))).unwrap(),
            None
        );
        for (test, ok) in [
            (&["NONE"][..], true),
            (&[], true),
            (&["CMD"], false),
            (&["CMD-SHELL", "a", "b"], false),
            (&["SHELL", "x"], false),
            (&["CMD", "a\0b"], false),
        ] {
            let r = HealthSpec::from_args(HealthArgs::default(), Some(&image(test)));
            assert_eq!(r.is_ok(), ok, "{test:?}");
        }
        let mut fast = image(&["CMD", "x"]);
        fast.interval = Some(Duration::from_nanos(1000));
        assert_eq!(
            HealthSpec::from_args(HealthArgs::default(), Some(&fast))
                .unwrap_err()
                .to_string(),
            "-image: the image's Healthcheck Interval 1000 ns: must be at least 1 ms, as docker \
             requires (override with -health-interval)"
        );
        let overridden = HealthArgs {
            health_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(HealthSpec::from_args(overridden, Some(&fast)).is_ok());
        let lone = HealthArgs {
            health_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert_eq!(
            HealthSpec::from_args(lone, None).unwrap_err().to_string(),
            "-health-interval needs a health check (-health-cmd, or an image that has one)"
        );
    }
}
