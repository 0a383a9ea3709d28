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
// Hole 4: host devices through mknod, an image's nodes, bind mounts and OCI layers.
mod devices;
// Hole 5: NET_RAW and the default capabilities (raw and packet sockets on the host's network).
mod caps;
// Hole 6: the system-call filter refuses keyrings, user namespaces, io_uring, bpf, perf, userfaultfd, VSOCK.
mod seccomp;
// Hole 7: a huge /etc/passwd in the image or the container against psdock's memory.
mod image_memory;
// Hole 8: trees deeper than the descriptor limit; /proc, /sys or /dev as symlinks.
mod image_cleanup;
// Hole 9: blobs that are links or FIFOs, overflowing sizes, endless layers.
mod image_hang;
