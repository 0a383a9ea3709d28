//! Stdio sinks: where the container's stdin, stdout and stderr go, chosen by the
//! scheme of `-stdio` (none: `inherit`). Each is one file behind one Cargo feature.

mod disabled;
mod inherit;
