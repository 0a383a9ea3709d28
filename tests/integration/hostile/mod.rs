//! The attacker's tests: a hostile image or command tries a known way out of
//! the container, and the host's files, devices, keys, binaries and
//! privileges stay out of reach. One file per class of hole, each test
//! playing the attacker on a real container.

// Hole 5: NET_RAW and the default capabilities (raw and packet sockets on the host's network).
mod caps;
// Hole 4: host devices through mknod, an image's nodes, bind mounts and OCI layers.
mod devices;
