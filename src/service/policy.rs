//! `-restart`, `-restart-delay` and `-restart-reset`: what they mean, as
//! plain data and pure functions (docker's names and defaults).

use std::time::Duration;

use crate::supervisor::Ending;

/// `-restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// One attempt, as psdock always did.
    #[default]
    No,
    /// Again after a failure (see [`Cause::failed`]), at most `N` more times
    /// when a cap is given.
    OnFailure(Option<u32>),
    /// Again after any end, until psdock is told to stop.
    Always,
}

/// `-restart-delay`'s default (docker's): 100 ms, doubling up to a minute.
pub const DEFAULT_DELAY: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(60));
/// `-restart-reset`'s default (docker's): a run of 10 s starts the delay over.
pub const DEFAULT_RESET: Duration = Duration::from_secs(10);

/// The three flags together, as `RunSpec` carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartSpec {
    pub policy: Policy,
    pub backoff: Backoff,
}

impl Default for RestartSpec {
    fn default() -> Self {
        Self {
            policy: Policy::No,
            backoff: Backoff {
                min: DEFAULT_DELAY.0,
                max: DEFAULT_DELAY.1,
                reset: DEFAULT_RESET,
            },
        }
    }
}

/// The wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    /// A run that lasted this long starts the wait over from `min`.
    pub reset: Duration,
}

impl Backoff {
    /// The wait before the next attempt, given the one before the last
    /// attempt (`None`: there was none yet) and how long that attempt ran.
    pub fn next(&self, previous: Option<Duration>, ran: Duration) -> Duration {
        match previous {
            Some(p) if ran < self.reset => p.saturating_mul(2).min(self.max),
            _ => self.min,
        }
    }
}

/// Why an attempt ended, beyond its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The command ended of its own accord, or of a signal psdock did not send.
    Own,
    /// psdock ended it, for a reason that is not the command's failure (the
    /// stdio peer went away, or a forwarded signal): `on-failure` leaves it.
    Psdock,
    /// psdock ended it because it was unhealthy: a failure for `on-failure`.
    Unhealthy,
    /// psdock ended it after the kernel's OOM killer struck in it (`-oom
    /// restart`): a failure for `on-failure`.
    Oom,
}

impl Cause {
    /// Whether an attempt that ended so counts as failed for `on-failure`: a
    /// non-zero exit, or death by a signal psdock did not send.
    pub fn failed(self, ending: Ending) -> bool {
        match (self, ending) {
            (Cause::Unhealthy | Cause::Oom, _) => true,
            (_, Ending::Exited(code)) => code != 0,
            (Cause::Own, Ending::Signaled(_)) => true,
            (Cause::Psdock, Ending::Signaled(_)) | (_, Ending::Translated(_)) => false,
        }
    }
}

impl Policy {
    /// Whether another attempt follows one that ended as `ending` for `cause`,
    /// after `restarts` restarts. A psdock told to stop never restarts.
    pub fn restarts(self, ending: Ending, cause: Cause, restarts: u32) -> bool {
        match self {
            Policy::No => false,
            Policy::Always => true,
            Policy::OnFailure(cap) => cause.failed(ending) && cap.is_none_or(|n| restarts < n),
        }
    }
}

/// `-restart`'s value: `no`, `on-failure[:N]` or `always`.
pub fn parse_policy(value: &str) -> Result<Policy, &'static str> {
    const WHAT: &str = "must be no, on-failure, on-failure:N (N at least 1) or always";
    match value {
        "no" => Ok(Policy::No),
        "always" => Ok(Policy::Always),
        "on-failure" => Ok(Policy::OnFailure(None)),
        _ => match value.strip_prefix("on-failure:").map(str::parse::<u32>) {
            Some(Ok(n)) if n >= 1 => Ok(Policy::OnFailure(Some(n))),
            _ => Err(WHAT),
        },
    }
}

/// `-restart-delay`'s value: `MIN` or `MIN:MAX`, each a duration as
/// [`crate::cli::positive_duration`] reads it; MAX defaults to a minute, or to MIN
/// when MIN is longer.
pub fn parse_delay(value: &str) -> Result<(Duration, Duration), String> {
    let one = |v: &str| crate::cli::positive_duration(v).map_err(|e| format!("{v}: {e}"));
    match value.split_once(':') {
        None => {
            let min = one(value)?;
            Ok((min, DEFAULT_DELAY.1.max(min)))
        }
        Some((min, max)) => {
            let (min, max) = (one(min)?, one(max)?);
            if max < min {
                return Err("MAX must not be shorter than MIN".into());
            }
            Ok((min, max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_wait_doubles_up_to_max_and_starts_over_after_a_long_run() {
        let b = Backoff {
            min: MS(100),
            max: MS(500),
            reset: MS(1000),
        };
        let mut wait = None;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let w = b.next(wait, MS(10));
            seen.push(w.as_millis());
            wait = Some(w);
        }
        assert_eq!(seen, [100, 200, 400, 500, 500]);
        assert_eq!(b.next(wait, MS(1000)), MS(100));
        assert_eq!(b.next(wait, MS(999)), MS(500));
    }

    #[test]
    fn on_failure_restarts_failures_up_to_its_cap() {
        let p = Policy::OnFailure(Some(2));
        assert!(p.restarts(Ending::Exited(1), Cause::Own, 0));
        assert!(p.restarts(Ending::Exited(1), Cause::Own, 1));
        assert!(!p.restarts(Ending::Exited(1), Cause::Own, 2));
        assert!(!p.restarts(Ending::Exited(0), Cause::Own, 0));
        assert!(p.restarts(Ending::Signaled(9), Cause::Own, 0));
        assert!(!p.restarts(Ending::Signaled(15), Cause::Psdock, 0));
        assert!(!p.restarts(Ending::Translated(15), Cause::Own, 0));
        assert!(p.restarts(Ending::Exited(0), Cause::Unhealthy, 0));
        assert!(p.restarts(Ending::Translated(15), Cause::Unhealthy, 0));
        assert!(Policy::OnFailure(None).restarts(Ending::Exited(3), Cause::Own, 1000));
        assert!(Policy::Always.restarts(Ending::Exited(0), Cause::Psdock, 1000));
        assert!(!Policy::No.restarts(Ending::Exited(1), Cause::Own, 0));
    }

    #[test]
    fn values_as_docker_spells_them() {
        assert_eq!(parse_policy("no"), Ok(Policy::No));
        assert_eq!(parse_policy("always"), Ok(Policy::Always));
        assert_eq!(parse_policy("on-failure"), Ok(Policy::OnFailure(None)));
        assert_eq!(parse_policy("on-failure:3"), Ok(Policy::OnFailure(Some(3))));
        for bad in [
            "",
            "On-failure",
            "on-failure:0",
            "on-failure:",
            "on-failure:x",
            "unless-stopped",
        ] {
            assert!(parse_policy(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_delay("1s"), Ok((MS(1000), MS(60_000))));
        assert_eq!(parse_delay("2m"), Ok((MS(120_000), MS(120_000))));
        assert_eq!(parse_delay("50ms:2s"), Ok((MS(50), MS(2000))));
        assert_eq!(parse_delay("3:5"), Ok((MS(3000), MS(5000))));
        assert!(parse_delay("2s:1s").is_err());
        assert!(parse_delay("x").is_err());
        assert!(parse_delay("1s:").is_err());
    }
}
