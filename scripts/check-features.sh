#!/usr/bin/env bash
# Builds and unit-tests every feature set a packager is likely to choose: no
# default features, each feature alone, and all of them together. The feature
# list is read from Cargo.toml's [features] table, so a new feature is checked
# without touching this script.
# Usage: scripts/check-features.sh   (from anywhere; CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/.."

# Every key of [features] but `default`, in file order.
features=$(awk '
    /^\[/ { in_features = ($0 == "[features]"); next }
    in_features && match($0, /^[A-Za-z0-9_-]+[ \t]*=/) {
        name = substr($0, 1, RLENGTH); sub(/[ \t]*=$/, "", name)
        if (name != "default") print name
    }' Cargo.toml)

check() {
    echo "== features: $*" >&2
    cargo check --locked --quiet --bins "$@"
    cargo test --locked --quiet --lib "$@"
}

check --no-default-features
for f in $features; do
    check --no-default-features --features "$f"
done
check --all-features
echo "feature sets checked: none, $(echo $features | tr ' ' ','), all" >&2
