//! The run as plain, validated data. Everything a run needs is decided here,
//! before the first directory or mount is made, so that bad input leaves
//! nothing behind. One file per concern; [`RunSpec`] assembles them.

mod binds;
mod caps;
mod error;
pub mod limits;
mod net;
mod process;
mod run;
mod seccomp;

pub use binds::BindMount;
pub use error::SpecError;
pub use limits::Limits;
pub use net::{NetSpec, NetSpecError, Proto, Publish, Subnet};
pub use process::{container_user_file, env_var, ProcessSpec};
pub use run::{RunSpec, DEFAULT_KILL_TIMEOUT};
pub use seccomp::{compile as seccomp_filter, ProfileText, Seccomp, SeccompSpec};
