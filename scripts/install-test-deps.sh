#!/bin/sh
# Install, as root, the Debian packages the test suite needs: busybox-static for
# the test image, umoci and skopeo for the OCI layouts, lsof and procps for the
# lsof port probe, libc6-dev for the static system-call probe that the
# seccomp tests build and run inside containers, systemd for systemd-journald
# and journalctl, which the journald sink tests run in a private mount
# namespace of their own. Does nothing when they are all there.
exec "$(dirname "$0")/apt-need.sh" busybox-static umoci skopeo lsof procps libc6-dev systemd
