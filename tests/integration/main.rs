//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;

// Command line forms, bad input and what it leaves behind.
mod cli;

// The overlay rootfs: mount options and teardown.
mod overlay;
