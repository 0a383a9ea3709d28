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
# Prints one markdown table and writes it to bench/results/log-throughput.md.
#
# Usage (as root): bench/log-throughput.sh
#   SIZE=1073741824 PER_LINE=67108864 RUNS=9   the defaults
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

if [ "$(id -u)" != 0 ]; then
    echo "log-throughput.sh: must run as root (it starts containers)" >&2
    exit 1
fi
"$repo/scripts/apt-need.sh" hyperfine mawk jq gcc libc6-dev busybox-static

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

median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
mb() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
d=$(median "$work/bulk.json" direct); c=$(median "$work/bulk.json" cat); m=$(median "$work/bulk.json" mawk)
p=$(median "$work/bulk.json" psdock); pp=$(median "$work/bulk.json" psdock-prefix)
ld=$(median "$work/lines.json" direct-per-line); lp=$(median "$work/lines.json" psdock-per-line)

out="$repo/bench/results/log-throughput.md"
mkdir -p "$(dirname "$out")"
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
