#!/bin/sh
# Builds the Debian package and prints its path,
# target/debian/psdock_<version>_<arch>.deb:
#   /usr/bin/psdock, psdock-ls, psdock-exec   the static release build
#                                             (scripts/build-release.sh; when it
#                                             was just built, cargo finds it fresh)
#   /usr/share/man/man1/*.1.gz                man pages      } examples/gen-docs,
#   /usr/share/bash-completion/completions/*  bash           } from the clap
#   /usr/share/zsh/vendor-completions/_*      zsh            } definitions of
#   /usr/share/fish/vendor_completions.d/*    fish           } this build
#   /usr/lib/systemd/system/psdock@.service   when contrib/psdock@.service exists
#   /usr/share/doc/psdock/                    copyright, changelog.gz, README.md.gz
# The binaries are static, so the package depends on nothing; Built-Using names
# the glibc they carry. Extra arguments go to cargo (e.g. --no-default-features
# --features ...), for the binaries and the completions alike.
# Maintainer: $DEBFULLNAME <$DEBEMAIL>. Reproducible: file times and the man
# pages' date are SOURCE_DATE_EPOCH, by default the last commit's time.
set -eu
cd "$(dirname "$0")/.."
umask 022
bin=$(scripts/build-release.sh "$@")
for b in psdock psdock-ls psdock-exec; do
    if readelf -l "$bin/$b" | grep -q 'program interpreter'; then
        echo "build-deb.sh: $bin/$b is dynamically linked: the package declares no Depends" >&2
        exit 1
    fi
done
version=$("$bin/psdock" -version | sed -n 's/^psdock //p')
arch=$(dpkg --print-architecture)
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
maintainer="${DEBFULLNAME:-psdock maintainers} <${DEBEMAIL:-maintainers@psdock.invalid}>"
out=${CARGO_TARGET_DIR:-$PWD/target}/debian
root=$out/psdock_${version}_$arch
rm -rf "$root"
mkdir -p "$root/DEBIAN"

install -D -m 0755 -t "$root/usr/bin" "$bin/psdock" "$bin/psdock-ls" "$bin/psdock-exec"

docs=$out/docs
rm -rf "$docs"
cargo run --quiet --locked --example gen-docs "$@" -- "$docs" >/dev/null
man=$root/usr/share/man/man1
bash=$root/usr/share/bash-completion/completions
zsh=$root/usr/share/zsh/vendor-completions
fish=$root/usr/share/fish/vendor_completions.d
mkdir -p "$man" "$bash" "$zsh" "$fish"
for b in psdock psdock-ls psdock-exec; do
    gzip -9n <"$docs/man/$b.1" >"$man/$b.1.gz"
    install -m 0644 "$docs/bash/$b" "$bash/$b"
    install -m 0644 "$docs/zsh/_$b" "$zsh/_$b"
    install -m 0644 "$docs/fish/$b.fish" "$fish/$b.fish"
done

# The unit template is another part's; it goes in when it is there.
if [ -f contrib/psdock@.service ]; then
    install -D -m 0644 contrib/psdock@.service "$root/usr/lib/systemd/system/psdock@.service"
fi

doc=$root/usr/share/doc/psdock
mkdir -p "$doc"
gzip -9n <README.md >"$doc/README.md.gz"
# A native package: its changelog is changelog.gz, one entry for this build.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '%s\n' "psdock ($version) unstable; urgency=medium" "" \
    "  * Built from commit $commit." "" \
    " -- $maintainer  $date" | gzip -9n >"$doc/changelog.gz"
cat >"$doc/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: psdock
Comment: The binaries are statically linked. They carry the GNU C Library
 (LGPL-2.1+, see /usr/share/common-licenses/LGPL-2.1; its source is
 Debian's glibc package, named in this package's Built-Using field) and the
 Rust crates listed in psdock's Cargo.lock, each under its own license
 (MIT, Apache-2.0, ISC, BSD or Unicode-3.0).

Files: *
Copyright: psdock contributors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
EOF

glibc=$(dpkg-query -W -f='${source:Package} (= ${source:Version})' libc6-dev)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: psdock
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Built-Using: $glibc
Suggests: lsof, procps
Section: admin
Priority: optional
Description: daemon-less process supervisor running one command in a container
 psdock runs one command in a throwaway Linux container and supervises it
 until it ends, with no daemon: the container's root is an overlay of an
 image (a directory, an OCI image layout or a root file system tarball),
 thrown away at exit, in its own mount, PID, UTS and IPC namespaces, with a
 reduced capability set and a system-call filter.
 .
 psdock forwards signals, exits with the command's exit code, sends the
 command's output to a file (rotated), a TCP or TLS peer, or its own
 terminal, and can tell a web hook when the command starts, listens on its
 port, and ends. psdock-ls lists the running containers and reclaims what a
 killed psdock left; psdock-exec runs another command inside one.
 .
 The binaries are static. Man pages, bash, zsh and fish completions and, when
 built with it, a systemd unit template are included.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/psdock_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
