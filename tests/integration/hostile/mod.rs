//! The attacker's tests: a hostile image or command tries a known way out of
//! the container, and the host's files, devices, keys, binaries and
//! privileges stay out of reach. One file per class of hole, each test
//! playing the attacker on a real container.

// Hole 1: a working directory through a descriptor of psdock's (CVE-2024-21626).
mod cwd;

// Hole 2: setuid files and devices the container writes, seen from the host.
mod setuid;

// Hole 3: the host's psdock binaries, written through /proc/<pid>/exe (CVE-2019-5736).
mod binary;
