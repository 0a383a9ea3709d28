#!/usr/bin/env bash
# -publish measured: a `-net bridge` container serves TCP (bench/tcp-bench.c)
# and the host fetches from it, in rounds that take turns, through
#   - the container's address directly: the kernel's path over the bridge, the floor;
#   - the published port on 127.0.0.1, through psdock's userspace forwarder;
#   - the published port on the host's own non-loopback address, the same;
#   - a kernel DNAT rule this script adds (iptables, nat OUTPUT) for another
#     port on the host's address, to the same server: what a rule-based
#     -publish would do (on 127.0.0.1 it would also need route_localnet and
#     SNAT, so it is not measured there).
# For each: throughput of one connection carrying SIZE bytes (MB/s, median),
# the rate of short connections (CONNS one after another, each asking for one
# byte), and both as a ratio to the floor; and psdock's CPU time per GiB it
# forwarded. Traffic stays on this host: between it and the namespace psdock
# made. Prints one markdown table and writes it to bench/results/publish.md.
#
# Usage (as root): bench/publish.sh
#   SIZE=1073741824 CONNS=2000 ROUNDS=5   the defaults
#   PSDOCK=/path/to/psdock                measure that binary (psdock-ls beside
#                                         it) instead of building one
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size=${SIZE:-1073741824}
conns=${CONNS:-2000}
rounds=${ROUNDS:-5}
[ "$rounds" -ge 1 ] || { echo "publish.sh: ROUNDS must be 1 or more" >&2; exit 1; }
bridge=psdpub0
subnet=10.251.0.0/24

if [ "$(id -u)" != 0 ]; then
    echo "publish.sh: must run as root (it starts containers and adds a DNAT rule)" >&2
    exit 1
fi

if [ -z "${PSDOCK_BENCH_INNER:-}" ]; then
    "$repo/scripts/apt-need.sh" gcc libc6-dev busybox-static jq iptables iproute2
    if [ -n "${PSDOCK:-}" ]; then
        PSDOCK_LABEL="\`$PSDOCK\`"
    else
        PSDOCK=$("$repo/scripts/build-release.sh" --quiet)/psdock
        rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
        if ! git -C "$repo" diff --quiet HEAD -- . ':!bench/results' 2>/dev/null; then rev="$rev-dirty"; fi
        PSDOCK_LABEL="\`$rev\` (scripts/build-release.sh)"
    fi
    PSDOCK=$(realpath "$PSDOCK")
    export PSDOCK PSDOCK_LABEL PSDOCK_BENCH_INNER=1
    # A mount namespace of its own: no overlay outlives the script.
    exec unshare --mount --propagation private "$0" "$@"
fi

# The host's own non-loopback address: the source it would use for an
# outside address (a route lookup; nothing is sent).
host_ip=$(ip -4 -o route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$host_ip" ] || { echo "publish.sh: the host has no non-loopback IPv4 address" >&2; exit 1; }

tmp=$(mktemp -d /tmp/psdock-publish.XXXXXX)
export PSDOCK_STATE_DIR=$tmp/state
psdock_pid=
dnat=()
cleanup() {
    if [ -n "$psdock_pid" ]; then
        kill -TERM "$psdock_pid" 2>/dev/null || true
        wait "$psdock_pid" 2>/dev/null || true
    fi
    if [ ${#dnat[@]} -gt 0 ]; then iptables -w -t nat -D "${dnat[@]}" || true; fi
    # The bridge and its rules stay after psdock, as docker0 does: they are the bench's.
    ip link del "$bridge" 2>/dev/null || true
    iptables -w -t nat -D POSTROUTING -s "$subnet" ! -o "$bridge" -j MASQUERADE 2>/dev/null || true
    iptables -w -D FORWARD -i "$bridge" -j ACCEPT 2>/dev/null || true
    iptables -w -D FORWARD -o "$bridge" -j ACCEPT 2>/dev/null || true
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*" >&2; }
pressure() { awk '/^some/ { sub("avg10=", "", $2); print $2 "%" }' "/proc/pressure/$1" 2>/dev/null || echo n/a; }
busy() { echo "load $(cut -d' ' -f1 /proc/loadavg), CPU pressure $(pressure cpu), I/O pressure $(pressure io)"; }

say "building the busybox image and the server"
sh "$repo/scripts/busybox-image.sh" "$tmp/image" >/dev/null
mkdir "$tmp/bin"
gcc -O2 -Wall -Werror -static -o "$tmp/bin/tcp-bench" "$repo/bench/tcp-bench.c"
client=$tmp/bin/tcp-bench

say "starting the server in a bridge container, port 9000 published"
"$PSDOCK" -i "$tmp/image" -r "$tmp/rootfs" -net bridge -net-bridge "$bridge" -net-subnet "$subnet" \
    -p 0.0.0.0::9000 -v "$tmp/bin:/b:ro" /b/tcp-bench serve 9000 </dev/null >"$tmp/server.log" 2>&1 &
psdock_pid=$!
deadline=$((SECONDS + 30))
until row=$("$(dirname "$PSDOCK")/psdock-ls" --json 2>/dev/null | jq -ce '.[] | select(.net.address != null)'); do
    [ $SECONDS -lt $deadline ] || { echo "publish.sh: the container did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.05
done
cip=$(jq -r .net.address <<<"$row")
hport=$(jq -r '.net.ports[0].host_port' <<<"$row")
until "$client" get "$cip" 9000 1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "publish.sh: the server does not answer" >&2; cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.05
done

# A port nothing on the host uses, for the DNAT rule.
dport=
for p in $(seq 41000 41999); do
    if ! ss -Htan "( sport = :$p or dport = :$p )" | grep -q .; then dport=$p; break; fi
done
[ -n "$dport" ] || { echo "publish.sh: no free port for the DNAT rule" >&2; exit 1; }
dnat=(OUTPUT -d "$host_ip/32" -p tcp --dport "$dport" -j DNAT --to-destination "$cip:9000")
iptables -w -t nat -A "${dnat[@]}"

names=(direct publish-lo publish-host dnat-host)
targets=("$cip 9000" "127.0.0.1 $hport" "$host_ip $hport" "$host_ip $dport")
ticks() { awk '{ print $14 + $15 }' "/proc/$psdock_pid/stat"; }
forwarded_ticks=0
forwarded_bytes=0

busy_before=$(busy)
say "$rounds rounds: $size bytes and $conns connections through each path ($busy_before)"
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#names[@]}; i++)); do
        j=$(((i + r) % ${#names[@]}))
        read -r ip port <<<"${targets[j]}"
        before=$(ticks)
        "$client" get "$ip" "$port" "$size" >>"$tmp/mbs.${names[j]}"
        after=$(ticks)
        "$client" conns "$ip" "$port" "$conns" >>"$tmp/cps.${names[j]}"
        case ${names[j]} in publish-*)
            forwarded_ticks=$((forwarded_ticks + after - before))
            forwarded_bytes=$((forwarded_bytes + size))
            ;;
        esac
    done
    printf '.' >&2
done
echo >&2
busy_after=$(busy)

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
row() { # NAME LABEL
    local mbs cps
    mbs=$(median "$tmp/mbs.$1")
    cps=$(median "$tmp/cps.$1")
    printf '| %s | %.0f | %s | %.0f | %s |\n' "$2" "$mbs" \
        "$(calc '%.2f×' "$mbs / $(median "$tmp/mbs.direct")")" "$cps" \
        "$(calc '%.2f×' "$cps / $(median "$tmp/cps.direct")")"
}
cpu_per_gib=$(calc '%.2f' "$forwarded_ticks / $(getconf CLK_TCK) / ($forwarded_bytes / 1073741824)")
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
table=$(cat <<EOF
| Path from the host to a \`-net bridge\` container | MB/s (one connection, $(calc '%.1f' "$size / 1073741824") GiB) | ÷ floor | connections/s (short, one after another) | ÷ floor |
|---|---|---|---|---|
$(row direct "the container's address directly (the kernel over the bridge: the floor)")
$(row publish-lo "\`-publish\` on 127.0.0.1 (psdock's forwarder)")
$(row publish-host "\`-publish\` on the host's address (psdock's forwarder)")
$(row dnat-host "a kernel DNAT rule (iptables, nat OUTPUT) on the host's address")

Medians of $rounds rounds taking turns. psdock's CPU time while forwarding: $cpu_per_gib s per GiB.
psdock $PSDOCK_LABEL; bench/tcp-bench.c as server and client; $(nproc) cores ($cpu), Linux $(uname -r),
$(date -u +%Y-%m-%d), by \`bench/publish.sh\`. Before: $busy_before; after: $busy_after.
EOF
)
mkdir -p "$repo/bench/results"
printf '%s\n' "$table" >"$repo/bench/results/publish.md"
printf '\n%s\n' "$table"
