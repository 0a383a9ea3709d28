//! The health state and docker's rules for moving between its values.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a container with a health check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No check has passed yet, and not enough have failed.
    Starting,
    Healthy,
    /// `retries` checks in a row have failed.
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// What the state record keeps of it, as `docker inspect` shows `State.Health`
/// (with the last check only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    pub status: Health,
    pub failing_streak: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckRecord>,
}

/// One check as recorded: times in RFC 3339, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub start: String,
    pub end: String,
    /// -1: killed at its timeout.
    pub exit_code: i32,
    /// The end of its stdout and stderr, at most 4 KiB.
    pub output: String,
}

/// The state and the failures in a row, as docker counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    pub health: Health,
    pub failing_streak: u32,
    retries: u32,
    start_period: Duration,
}

impl Tracker {
    pub fn new(retries: u32, start_period: Duration) -> Self {
        Self {
            health: Health::Starting,
            failing_streak: 0,
            retries,
            start_period,
        }
    }

    /// Counts one check that ended `since_start` after the container started;
    /// returns the new state if it changed. A success ends the start period
    /// for good; a failure within it does not count while the container is
    /// still `starting`.
    pub fn record(&mut self, passed: bool, since_start: Duration) -> Option<Health> {
        let before = self.health;
        if passed {
            self.failing_streak = 0;
            self.health = Health::Healthy;
        } else if self.health == Health::Starting && since_start < self.start_period {
            // Docker's start period: the service is allowed to come up.
        } else {
            self.failing_streak = self.failing_streak.saturating_add(1);
            if self.failing_streak >= self.retries {
                self.health = Health::Unhealthy;
            }
        }
        (self.health != before).then_some(self.health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn healthy_at_the_first_success_unhealthy_after_retries_failures() {
        let mut t = Tracker::new(3, Duration::ZERO);
        assert_eq!(t.record(true, S), Some(Health::Healthy));
        assert_eq!(t.record(true, S), None);
        assert_eq!(t.record(false, S), None);
        assert_eq!(t.record(false, S), None);
        assert_eq!(t.failing_streak, 2);
        assert_eq!(t.record(false, S), Some(Health::Unhealthy));
        assert_eq!(t.record(false, S), None);
        assert_eq!(t.failing_streak, 4);
        assert_eq!(t.record(true, S), Some(Health::Healthy));
        assert_eq!(t.failing_streak, 0);
    }

    #[test]
    fn failures_in_the_start_period_count_only_until_a_success() {
        let mut t = Tracker::new(1, 10 * S);
        assert_eq!(t.record(false, S), None);
        assert_eq!(t.failing_streak, 0);
        assert_eq!(t.record(false, 11 * S), Some(Health::Unhealthy));
        let mut t = Tracker::new(1, 10 * S);
        assert_eq!(t.record(true, S), Some(Health::Healthy));
        assert_eq!(t.record(false, 2 * S), Some(Health::Unhealthy));
    }
}
