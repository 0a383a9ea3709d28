#!/bin/sh
# Set up and run psdock on a real example, on a fresh Debian machine, as root:
# install busybox-static, build psdock (scripts/build-release.sh), make a
# busybox image directory, and run one command in a throwaway container made
# from it.
set -eu
cd "$(dirname "$0")/.."
scripts/apt-need.sh busybox-static
bin=$(scripts/build-release.sh)
image=${PSDOCK_EXAMPLE_IMAGE:-/var/tmp/psdock-example-image}
[ -d "$image" ] || scripts/busybox-image.sh "$image"
exec "$bin/psdock" -i "$image" -r /var/tmp/psdock-example-rootfs -hostname example \
    sh -c 'echo "hello from $(hostname), running as $(id -un) with pid $$"; ls /'
