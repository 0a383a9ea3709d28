#!/bin/sh
# Build a minimal image directory from Debian's static busybox: the binary, one
# symlink per applet, and the /etc files a container needs.
# Usage: scripts/busybox-image.sh DIR   (DIR must not exist yet)
set -eu
dir=${1:?usage: busybox-image.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
if [ -e "$dir" ]; then echo "busybox-image.sh: $dir already exists" >&2; exit 1; fi
if ! "$busybox" true 2>/dev/null; then
    echo "busybox-image.sh: $busybox missing (apt-get install busybox-static)" >&2; exit 1
fi
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/tmp" "$tmp/root" "$tmp/home/app" "$tmp/home/psdtest" "$tmp/proc" "$tmp/sys" "$tmp/dev"
chmod 1777 "$tmp/tmp"
chmod 700 "$tmp/root"
cp "$busybox" "$tmp/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$tmp/bin/$applet" ] || ln -s busybox "$tmp/bin/$applet"
done
mkdir -p "$tmp/usr"
ln -s ../bin "$tmp/usr/bin"
ln -s bin "$tmp/sbin"
# psdtest (4711) and the psd* groups exist only here, not on a usual host: the
# tests use them to prove that -user is resolved in the image.
cat > "$tmp/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
psdtest:x:4711:4712:a user only the image has:/home/psdtest:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$tmp/etc/group" <<'GR'
root:x:0:
app:x:1000:
staff:x:50:app
audio:x:29:app,root
psdgrp:x:4712:
psdextra:x:4713:app,psdtest
psdmore:x:4714:psdtest
nogroup:x:65534:
GR
# Like any distribution image: a container's network files exist in the image,
# so binding the host's resolv.conf over it copies nothing up.
: > "$tmp/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "$tmp/etc/hosts"
echo localhost > "$tmp/etc/hostname"
chown 1000:1000 "$tmp/home/app"
chown 4711:4712 "$tmp/home/psdtest"
chmod 700 "$tmp/home/psdtest"
mv "$tmp" "$dir"
trap - EXIT
