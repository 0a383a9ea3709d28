//! The resource-limit flags, flattened into [`super::Args`]: docker's names,
//! taken as text here and validated in `spec::limits`, so that every bad value
//! is reported the same way (flag, value, why).

#[derive(Debug, Default, clap::Args)]
pub struct LimitArgs {
    /// Memory limit: bytes, or a number with b, k, m or g (as docker's -memory)
    #[arg(long = "memory", value_name = "BYTES")]
    pub memory: Option<String>,

    /// Memory plus swap: -1 for unlimited swap, equal to -memory for none
    /// [default: twice -memory]
    #[arg(
        long = "memory-swap",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub memory_swap: Option<String>,

    /// Soft memory limit, enforced when the host runs short of memory
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub memory_reservation: Option<String>,

    /// How many CPUs' worth of time the container may use, e.g. 1.5
    #[arg(long = "cpus", value_name = "N")]
    pub cpus: Option<String>,

    /// Relative CPU weight on cgroup v1, 2 to 262144 (translated on v2)
    #[arg(long = "cpu-shares", value_name = "SHARES")]
    pub cpu_shares: Option<String>,

    /// Relative CPU weight on cgroup v2, 1 to 10000 (translated on v1)
    #[arg(long = "cpu-weight", value_name = "WEIGHT")]
    pub cpu_weight: Option<String>,

    /// CPUs the container may run on, e.g. 0-1 or 0,2
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// Most processes and threads the container may have; -1 for no limit
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,

    /// Relative block I/O weight, 10 to 1000
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<String>,

    /// Read rate limit on a block device, e.g. /dev/sda:1mb (repeatable)
    #[arg(long = "device-read-bps", value_name = "DEV:RATE", action = clap::ArgAction::Append)]
    pub device_read_bps: Vec<String>,

    /// Write rate limit on a block device, e.g. /dev/sda:1mb (repeatable)
    #[arg(long = "device-write-bps", value_name = "DEV:RATE", action = clap::ArgAction::Append)]
    pub device_write_bps: Vec<String>,

    /// When the kernel's OOM killer ends a process of the container: notify
    /// (an `oom` web hook event), kill (end the whole container, exit 137) or
    /// restart [default: notify]
    #[arg(long = "oom", value_name = "notify|kill|restart")]
    pub oom: Option<String>,

    /// Let one host device node into the container's /dev, with the access
    /// the container gets to it: r, w, m (mknod) [default: rwm] (repeatable)
    #[arg(long = "device", value_name = "PATH[:rwm]", action = clap::ArgAction::Append)]
    pub device: Vec<String>,
}
