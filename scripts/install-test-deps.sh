#!/bin/sh
# Install, as root, the Debian packages the test suite needs: busybox-static for
# the test image, umoci and skopeo for the OCI layouts, lsof and procps for the
# lsof port probe, libc6-dev for the static system-call probe that the
# seccomp tests build and run inside containers, iptables for -net bridge's
# NAT and iproute2 for the network tests' own namespaces, zsh and fish for the
# syntax checks of the shell completions, systemd for systemd-journald and
# journalctl (the journald sink tests run them in a private mount namespace of
# their own), python3 and pip for the Standard Webhooks receiver. Then
# Python's `standardwebhooks` (the specification's reference library) from
# PyPI, which the web hook test verifies psdock's requests with. Does nothing
# when they are all there.
set -eu
"$(dirname "$0")/apt-need.sh" busybox-static umoci skopeo lsof procps libc6-dev \
    iptables iproute2 zsh fish systemd python3 python3-pip
python3 -c 'import standardwebhooks' 2>/dev/null ||
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --root-user-action=ignore standardwebhooks==1.1.0
