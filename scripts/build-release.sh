#!/bin/sh
# Builds the release binaries as they are meant to be installed and prints the
# directory that holds them (target/<host>/release):
#   - glibc linked in statically: no dynamic loader, no shared libraries to map
#     and relocate at each start. A container starts ~0.3 ms sooner and the
#     supervisor maps ~1 MiB less (bench/startup.sh). Still position-independent
#     (static-pie): the binary keeps address-space randomisation.
#   - relative relocations packed (DT_RELR): a few KiB read at start instead of
#     ~120 KiB.
#   - the code of optional paths laid out after the rest
#     (scripts/release-layout.ld): fewer page faults at each start.
# `cargo build --release` still builds working, dynamically linked binaries;
# this is the build that bench/startup.sh measures. Extra arguments go to cargo.
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
case $host in
*-linux-gnu*) ;;
*) echo "build-release.sh: needs a Linux glibc host, not $host" >&2; exit 1 ;;
esac
# RUSTFLAGS is split at spaces, and the layout script is named by its path.
case $PWD in
*[[:space:]]*) echo "build-release.sh: the checkout's path has a space: $PWD" >&2; exit 1 ;;
esac
# With --target, RUSTFLAGS reach only what is built for the target, not build
# scripts or proc-macros (which cannot be linked statically).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,-T,$PWD/scripts/release-layout.ld" \
    cargo build --release --locked --target "$host" "$@" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$host/release"
