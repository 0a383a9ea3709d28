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
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/tmp" "$tmp/root" "$tmp/home/app" "$tmp/proc" "$tmp/sys" "$tmp/dev"
chmod 1777 "$tmp/tmp"
cp "$busybox" "$tmp/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$tmp/bin/$applet" ] || ln -s busybox "$tmp/bin/$applet"
done
mkdir -p "$tmp/usr"
ln -s ../bin "$tmp/usr/bin"
ln -s bin "$tmp/sbin"
cat > "$tmp/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$tmp/etc/group" <<'GR'
root:x:0:
app:x:1000:
staff:x:50:app
audio:x:29:app,root
nogroup:x:65534:
GR
chown 1000:1000 "$tmp/home/app"
mv "$tmp" "$dir"
trap - EXIT
