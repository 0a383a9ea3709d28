/// The flags of the restart policy, flattened into [`super::Args`].
#[derive(Debug, Default, clap::Args)]
pub struct RestartArgs {
    /// Start the command again when it ends: no, on-failure[:N] (a non-zero
    /// exit or a signal psdock did not send; at most N restarts) or always
    /// [default: no]
    #[arg(long = "restart", value_name = "no|on-failure[:N]|always", value_parser = crate::service::policy::parse_policy)]
    pub restart: Option<crate::service::Policy>,

    /// Wait before a restart: MIN, doubling up to MAX (durations: 10, 100ms,
    /// 1m) [default: 100ms:1m]
    #[arg(long = "restart-delay", value_name = "MIN[:MAX]", value_parser = crate::service::policy::parse_delay)]
    pub restart_delay: Option<(std::time::Duration, std::time::Duration)>,

    /// A run that lasted this long starts the wait over from MIN [default: 10s]
    #[arg(long = "restart-reset", value_name = "DURATION", value_parser = super::values::positive_duration)]
    pub restart_reset: Option<std::time::Duration>,
}

impl RestartArgs {
    pub fn spec(&self) -> crate::service::RestartSpec {
        let mut spec = crate::service::RestartSpec {
            policy: self.restart.unwrap_or_default(),
            ..Default::default()
        };
        if let Some((min, max)) = self.restart_delay {
            (spec.backoff.min, spec.backoff.max) = (min, max);
        }
        if let Some(reset) = self.restart_reset {
            spec.backoff.reset = reset;
        }
        spec
    }
}
