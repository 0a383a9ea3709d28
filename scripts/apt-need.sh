#!/bin/sh
# Installs, as root, those of the Debian packages named as arguments that are
# not installed yet; does nothing (and needs no network) when all are there.
set -eu
missing=
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
