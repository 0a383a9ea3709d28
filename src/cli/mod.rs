//! The command line: the original's Go-style flags (`-image`, `--image`, `-i`),
//! rewritten into clap's form before clap sees them, then parsed into [`Args`].

mod args;
mod compat;
mod stdio_args;

pub use args::Args;
pub use compat::{parse, CliError, Parsed};
pub use stdio_args::StdioArgs;
