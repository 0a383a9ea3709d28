use std::time::Duration;

/// The health-check flags, flattened into [`super::Args`]: kept apart so that
/// they live in one place. Each overrides the image's `Healthcheck` field.
#[derive(Debug, Default, clap::Args)]
pub struct HealthArgs {
    /// Run CMD (as /bin/sh -c CMD) inside the container to tell whether it is
    /// healthy: exit 0 is healthy; none turns off the image's check
    #[arg(long = "health-cmd", value_name = "CMD", allow_hyphen_values = true)]
    pub health_cmd: Option<String>,

    /// Time between the end of one check and the start of the next [default: 30s]
    #[arg(long = "health-interval", value_name = "DURATION", value_parser = super::values::positive_duration)]
    pub health_interval: Option<Duration>,

    /// A check running longer is killed and counts as failed [default: 30s]
    #[arg(long = "health-timeout", value_name = "DURATION", value_parser = super::values::positive_duration)]
    pub health_timeout: Option<Duration>,

    /// Failed checks in a row that make the container unhealthy [default: 3]
    #[arg(long = "health-retries", value_name = "N", value_parser = super::values::count)]
    pub health_retries: Option<u32>,

    /// Failures during this time after the start do not count, until a check
    /// first succeeds [default: 0]
    #[arg(long = "health-start-period", value_name = "DURATION", value_parser = super::values::duration)]
    pub health_start_period: Option<Duration>,
}
