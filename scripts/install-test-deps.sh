#!/bin/sh
# Install, as root, the Debian packages the test suite needs: busybox-static for
# the test image, umoci and skopeo for the OCI layouts, lsof and procps for the
# lsof port probe. Does nothing when they are all there.
set -eu
need="busybox-static umoci skopeo lsof procps"
missing=
for p in $need; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
