//! psdock's integration tests: real containers from a busybox image built by the
//! suite, as root. One test binary; one module per area.

mod util;

// Command line forms, bad input and what it leaves behind.
mod cli;

// Rootfs drivers: the listing, an explicit choice, no fallback.
mod drivers;

// OCI layouts and rootfs tarballs: layers, whiteouts, config, the cache, refusals.
mod oci;
