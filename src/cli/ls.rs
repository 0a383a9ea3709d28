use clap::{ArgAction, Parser};

/// List the containers psdock runs on this host, from the state records under
/// /run/psdock (or $PSDOCK_STATE_DIR).
#[derive(Debug, Parser)]
#[command(
    name = "psdock-ls",
    version,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct LsArgs {
    /// Print a JSON array of objects instead of the table
    #[arg(long = "json")]
    pub json: bool,

    /// Print the container ids alone, one a line
    #[arg(short = 'q', long = "quiet", conflicts_with = "json")]
    pub quiet: bool,

    /// Also list containers that are not running: starting, stopping, stale
    /// (their psdock is gone) and broken entries
    #[arg(short = 'a', long = "all")]
    pub all: bool,

    /// Reclaim what killed psdocks left behind (every stale entry) and print
    /// what was reclaimed
    #[arg(long = "prune", conflicts_with_all = ["json", "all"])]
    pub prune: bool,

    /// Print the version
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    pub version: (),

    /// Show what each running container uses (CPU%, memory, processes),
    /// refreshed every second until interrupted, as docker stats does
    #[arg(long = "stats", conflicts_with_all = ["json", "quiet", "all", "prune"])]
    pub stats: bool,

    /// With --stats: print once and exit
    #[arg(long = "no-stream", requires = "stats")]
    pub no_stream: bool,
}
