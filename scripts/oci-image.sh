#!/bin/sh
# Build an OCI image layout from a busybox image directory (scripts/busybox-image.sh)
# with real tools, umoci and skopeo. Its tags:
#   plain        busybox, one layer
#   layers       plain + a layer adding /data/{kept,gone} and /opq/{old,sub/deep},
#                one deleting /data/gone (a whiteout), one replacing /opq with
#                /opq/new alone (an opaque directory)
#   layers-zstd  the same, every layer recompressed with zstd by skopeo
#   config       plain with Entrypoint, Cmd, Env, WorkingDir and User set
# Usage: scripts/oci-image.sh BUSYBOX_IMAGE DIR   (DIR must not exist yet)
set -eu
image=${1:?usage: oci-image.sh BUSYBOX_IMAGE DIR}
dir=${2:?usage: oci-image.sh BUSYBOX_IMAGE DIR}
for tool in umoci skopeo; do
    command -v "$tool" >/dev/null || { echo "oci-image.sh: $tool missing (apt-get install $tool)" >&2; exit 1; }
done
if [ -e "$dir" ]; then echo "oci-image.sh: $dir already exists" >&2; exit 1; fi
tmp="$dir.tmp.$$"
work=$(mktemp -d)
trap 'rm -rf "$tmp" "$work"' EXIT

umoci init --layout "$tmp"
umoci new --image "$tmp:plain"
umoci insert --image "$tmp:plain" "$image" /

umoci tag --image "$tmp:plain" layers
mkdir -p "$work/data" "$work/opq/sub" "$work/new"
echo kept > "$work/data/kept"
echo gone > "$work/data/gone"
echo old > "$work/opq/old"
echo deep > "$work/opq/sub/deep"
echo new > "$work/new/new"
umoci insert --image "$tmp:layers" "$work/data" /data
umoci insert --image "$tmp:layers" "$work/opq" /opq
umoci insert --image "$tmp:layers" --whiteout /data/gone
umoci insert --image "$tmp:layers" --opaque "$work/new" /opq
skopeo copy --quiet --dest-compress-format zstd "oci:$tmp:layers" "oci:$tmp:layers-zstd"

umoci tag --image "$tmp:plain" config
# shellcheck disable=SC2016 # expanded in the container, not here
umoci config --image "$tmp:config" \
    --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo cmd: $GREETING $(pwd) $(id -u)' \
    --config.env GREETING=hello \
    --config.workingdir /home/app \
    --config.user app

mv "$tmp" "$dir"
