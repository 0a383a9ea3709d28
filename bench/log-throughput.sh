#!/usr/bin/env bash
# psdock's log path against the pipelines a user would otherwise write, on this
# machine (issue "Speed"): a child writes SIZE bytes of 61-byte lines as fast as
# it can (bench/linegen.c), and we time, side by side in one hyperfine run:
#   - `linegen > file`                          the floor: a direct redirect
#   - `linegen | cat > file`                    a plain pipe
#   - `linegen | mawk '{print "p " $0}' > file` a prefixing pipe
#   - psdock -stdio file://file linegen          the file sink
#   - psdock -stdio file://file -stdout-prefix 'p ' linegen
# then a child that makes one write(2) per line (PER_LINE bytes), written to
# the file directly and through psdock; and psdock's peak RSS during the runs.
# Then the log sinks against the tools a user would pipe into, on the same
# lines (SINK_SIZE bytes), into a journald of the bench's own (a private mount
# namespace: tmpfs on /run/systemd and /run/log, /dev/log bound to that
# journald's syslog socket; the host's journal and /dev are untouched):
#   - `linegen | systemd-cat`  and  psdock -stdio journald://
#   - `linegen | logger`       and  psdock -stdio syslog://      (/dev/log)
#   - `linegen | logger -T --octet-count -n 127.0.0.1` and psdock -stdio
#     syslog+tcp:// into a `busybox nc` that throws the bytes away
# Prints the markdown tables and writes them to bench/results/log-throughput.md
# and, for the sinks, bench/results/log-sinks.md.
#
# Usage (as root): bench/log-throughput.sh
#   SIZE=1073741824 PER_LINE=67108864 RUNS=9   the defaults
#   SINK_SIZE=8388608 SINK_RUNS=5               the same for the log sinks
#   ONLY=file | ONLY=sinks                      one part alone
#   PSDOCK=/path/to/psdock                      measure that binary instead of building one
#   TMPDIR=/dev/shm                             where the files go: tmpfs by default, so
#                                               that the log path is measured, not the disk
#                                               (on this machine's disk every case is
#                                               bound by writeback at ~500 MB/s)
# Targets: file sink >= 0.8x cat's throughput, prefixed >= 3x mawk's, the
# line-per-write child not slower through psdock than direct, RSS < 8 MiB.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size=${SIZE:-1073741824}
per_line=${PER_LINE:-67108864}
runs=${RUNS:-9}
sink_size=${SINK_SIZE:-8388608}
sink_runs=${SINK_RUNS:-5}

if [ "$(id -u)" != 0 ]; then
    echo "log-throughput.sh: must run as root (it starts containers)" >&2
    exit 1
fi
"$repo/scripts/apt-need.sh" hyperfine mawk jq gcc libc6-dev busybox-static systemd bsdutils

if [ -z "${PSDOCK:-}" ]; then
    PSDOCK="$("$repo/scripts/build-release.sh" --quiet --bin psdock)/psdock"
fi

work=$(mktemp -d "${TMPDIR:-/dev/shm}/psdock-log-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
sh "$repo/scripts/busybox-image.sh" "$work/image" >/dev/null
gcc -O2 -static -o "$work/image/bin/linegen" "$repo/bench/linegen.c"
gen="$work/image/bin/linegen"
log="$work/out.log"
run="$PSDOCK -i $work/image -r $work/rootfs"

out="$repo/bench/results/log-throughput.md"
mkdir -p "$(dirname "$out")"
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
mb() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

file_bench() {
    hyperfine --runs "$runs" --warmup 1 --prepare "rm -f $log" --export-json "$work/bulk.json" \
        -n direct "$gen $size > $log" \
        -n cat "$gen $size | cat > $log" \
        -n mawk "$gen $size | mawk '{print \"p \" \$0}' > $log" \
        -n psdock "$run -stdio file://$log linegen $size" \
        -n psdock-prefix "$run -stdio file://$log -stdout-prefix 'p ' linegen $size" >&2
    hyperfine --runs "$runs" --warmup 1 --prepare "rm -f $log" --export-json "$work/lines.json" \
        -n direct-per-line "$gen $per_line --line-per-write > $log" \
        -n psdock-per-line "$run -stdio file://$log linegen $per_line --line-per-write" >&2

    # Peak RSS: VmHWM of psdock, read until it exits (the kernel keeps the peak).
    peak_kib() {
        rm -f "$log"
        "$@" &
        local pid=$! hwm=0 v
        while v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$v" ]; do
            hwm=$v
            sleep 0.02
        done
        wait "$pid"
        echo "$hwm"
    }
    rss_plain=$(peak_kib $run -stdio "file://$log" linegen "$size")
    rss_prefix=$(peak_kib $run -stdio "file://$log" -stdout-prefix 'p ' linegen "$size")
    rss_rotate=$(peak_kib $run -stdio "file://$log" -log-rotate 1s linegen "$size")

    d=$(median "$work/bulk.json" direct); c=$(median "$work/bulk.json" cat); m=$(median "$work/bulk.json" mawk)
    p=$(median "$work/bulk.json" psdock); pp=$(median "$work/bulk.json" psdock-prefix)
    ld=$(median "$work/lines.json" direct-per-line); lp=$(median "$work/lines.json" psdock-per-line)
    {
        echo "| $(numfmt --to=iec "$size")B of 61-byte lines | median s | MB/s | target |"
        echo "|---|---|---|---|"
        echo "| \`linegen > file\` | $(printf %.2f "$d") | $(mb "$size" "$d") | |"
        echo "| \`linegen \| cat > file\` | $(printf %.2f "$c") | $(mb "$size" "$c") | |"
        echo "| \`linegen \| mawk '{print \"p \" \$0}' > file\` | $(printf %.2f "$m") | $(mb "$size" "$m") | |"
        echo "| psdock \`-stdio file://\` | $(printf %.2f "$p") | $(mb "$size" "$p") | $(ratio "$c" "$p")x cat (>= 0.8) |"
        echo "| psdock \`-stdio file:// -stdout-prefix 'p '\` | $(printf %.2f "$pp") | $(mb "$size" "$pp") | $(ratio "$m" "$pp")x mawk (>= 3) |"
        echo "| one write per line, $(numfmt --to=iec "$per_line")B, direct | $(printf %.2f "$ld") | $(mb "$per_line" "$ld") | |"
        echo "| one write per line, through psdock | $(printf %.2f "$lp") | $(mb "$per_line" "$lp") | $(ratio "$ld" "$lp")x direct (>= 1) |"
        echo
        echo "psdock peak RSS (VmHWM): file $((rss_plain / 1024)).$(( (rss_plain % 1024) * 10 / 1024 )) MiB, prefixed $((rss_prefix / 1024)).$(( (rss_prefix % 1024) * 10 / 1024 )) MiB, rotating every second (gzip thread) $((rss_rotate / 1024)).$(( (rss_rotate % 1024) * 10 / 1024 )) MiB (target < 8 MiB)."
    } | tee "$out"
}

# Runs in a private mount namespace (see the header): a journald of its own,
# its syslog socket on /dev/log, then the sinks and the tools side by side.
sinks_in_namespace() {
    set -euo pipefail
    mount -t tmpfs psdock-bench /run/systemd
    mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
    # No rate limit: every line is to be stored, by every contender.
    printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nRateLimitIntervalSec=0\nRateLimitBurst=0\n' \
        >/run/systemd/journald.conf.d/bench.conf
    mount -t tmpfs psdock-bench /run/log
    /lib/systemd/systemd-journald &
    journald=$!
    trap 'kill $journald ${nc:-} 2>/dev/null' EXIT
    while [ ! -S /run/systemd/journal/dev-log ]; do sleep 0.02; done
    # /dev/log without touching the host's /dev: an overlay on it (its
    # directories outside /dev, which $work may be under: /dev/shm).
    local d="$devdir"
    mkdir -p "$d/up" "$d/work" "$d/host"
    mount --rbind /dev "$d/host"
    mount -t overlay psdock-bench -o "lowerdir=/dev,upperdir=$d/up,workdir=$d/work" /dev
    for m in pts shm mqueue; do
        if mountpoint -q "$d/host/$m"; then mount --rbind "$d/host/$m" "/dev/$m"; fi
    done
    rm -f /dev/log && touch /dev/log && mount --bind /run/systemd/journal/dev-log /dev/log
    # A TCP receiver that throws the bytes away, one `cat` per connection.
    printf '#!/bin/sh\nexec cat >/dev/null\n' >"$work/drain" && chmod +x "$work/drain"
    local port=$((20000 + RANDOM % 40000))
    busybox nc -ll -p "$port" -e "$work/drain" &
    nc=$!
    local q="'"
    # A sender is done once it has handed its lines to journald's socket
    # buffers; each run waits until journald has stored them all.
    local sync="journalctl --sync"
    hyperfine --runs "$sink_runs" --warmup 1 --export-json "$work/sinks.json" \
        -n systemd-cat "$gen $sink_size | systemd-cat -t bench; $sync" \
        -n psdock-journald "$run -stdio ${q}journald://?tag=bench${q} linegen $sink_size; $sync" \
        -n logger "$gen $sink_size | logger -t bench; $sync" \
        -n psdock-syslog "$run -stdio ${q}syslog://?tag=bench${q} linegen $sink_size; $sync" \
        -n logger-tcp "$gen $sink_size | logger -t bench -T --octet-count -n 127.0.0.1 -P $port" \
        -n psdock-syslog-tcp "$run -stdio ${q}syslog+tcp://127.0.0.1:$port?tag=bench${q} linegen $sink_size" >&2
}

sinks_bench() {
    devdir=$(mktemp -d /tmp/psdock-bench-dev.XXXXXX)
    export work gen run sink_size sink_runs devdir
    export -f sinks_in_namespace
    unshare -m --propagation private bash -c sinks_in_namespace
    # The namespace and its mounts are gone with its last process.
    rm -rf "$devdir"
    local f="$work/sinks.json" s="$sink_size"
    row() {
        local t; t=$(median "$f" "$2")
        echo "| $1 | $(printf %.2f "$t") | $(mb "$s" "$t") | $(awk -v b="$s" -v t="$t" 'BEGIN { printf "%.0f", b / 61 / t / 1000 }') |"
    }
    {
        echo "| $(numfmt --to=iec "$s")B of 61-byte lines into a log | median s | MB/s | k lines/s |"
        echo "|---|---|---|---|"
        row "\`linegen \| systemd-cat\`" systemd-cat
        row "psdock \`-stdio journald://\`" psdock-journald
        row "\`linegen \| logger\` (/dev/log, journald)" logger
        row "psdock \`-stdio syslog://\` (/dev/log, journald)" psdock-syslog
        row "\`linegen \| logger -T --octet-count\`" logger-tcp
        row "psdock \`-stdio syslog+tcp://\`" psdock-syslog-tcp
        echo
        echo "psdock against the tool on the same lines: journald $(ratio "$(median "$f" systemd-cat)" "$(median "$f" psdock-journald)")x systemd-cat, /dev/log $(ratio "$(median "$f" logger)" "$(median "$f" psdock-syslog)")x logger, tcp $(ratio "$(median "$f" logger-tcp)" "$(median "$f" psdock-syslog-tcp)")x logger (higher is faster)."
    } | tee "$repo/bench/results/log-sinks.md"
}

case "${ONLY:-}" in
    file) file_bench ;;
    sinks) sinks_bench ;;
    *) file_bench; sinks_bench ;;
esac
