#!/usr/bin/env bash
# psdock's speed and size against its peers, on this machine:
#   - start-up: the whole `psdock -i IMG -r ROOTFS /bin/true` (overlay set-up and
#     teardown included), also with `-init` (its cost set against tini's over
#     a plain fork+exec on the host), against `crun run` and `runc run` given the same overlay,
#     bwrap over it, our own bare C clone+overlay+chroot program (overlay-run.c)
#     and a plain host fork+exec, taking turns in rounds of hyperfine runs; and
#     psdock with `-upper disk`, its upper directory on ROOTFS's file system;
#     and psdock with `-memory 256m` (a cgroup per run) against `crun run`
#     with the same memory limit;
#   - memory: VmRSS/VmHWM of psdock supervising `sleep`, against the parent
#     process of crun and runc and against tini doing the same;
#   - signals: how long a SIGTERM sent to psdock takes to reach a child that
#     traps it (sigterm-latency.c), against tini and a direct kill.
# Prints one markdown table and writes it to bench/results/startup.md.
#
# Usage (as root): bench/startup.sh
#   RUNS=200 ROUNDS=20 WARMUP=20     the defaults: RUNS start-ups of each
#   SIGNALS=500                      command in ROUNDS turns, after WARMUP
#   PSDOCK=/path/to/psdock           measure that binary instead of building one
#   BASELINE=/path/to/psdock         also measure an earlier build in the same
#                                    rounds, for a change's cost (≤ 1.15× aimed)
#   BASELINE_LABEL=text              what to call it in the table (its commit)
#   QUIET=5                          first wait (up to 10 minutes) until CPU and
#                                    I/O pressure are below 5% (a shared machine)
#
# Like for like: crun and runc get the namespaces psdock makes (mount, PID, UTS,
# IPC; the host network, no cgroup namespace) and a writable root. crun 1.8
# refuses cgroup v1 hybrid mode while /sys/fs/cgroup/unified is mounted, so the
# whole benchmark runs in a private mount namespace where it is not; that
# namespace also guarantees that no mount outlives the script.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-200}
rounds=${ROUNDS:-20}
[ "$rounds" -ge 1 ] || { echo "startup.sh: ROUNDS must be 1 or more" >&2; exit 1; }
warmup=${WARMUP:-20}
signals=${SIGNALS:-500}

if [ "$(id -u)" != 0 ]; then
    echo "startup.sh: must run as root (it starts containers)" >&2
    exit 1
fi

if [ -z "${PSDOCK_BENCH_INNER:-}" ]; then
    "$repo/scripts/apt-need.sh" crun runc bubblewrap hyperfine tini gcc libc6-dev busybox-static jq iptables
    if [ -n "${PSDOCK:-}" ]; then
        PSDOCK_LABEL="\`$PSDOCK\`"
    else
        PSDOCK=$("$repo/scripts/build-release.sh")/psdock
        # "-dirty" for changes to what was built, not for an earlier run's results.
        rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
        if ! git -C "$repo" diff --quiet HEAD -- . ':!bench/results' 2>/dev/null; then rev="$rev-dirty"; fi
        PSDOCK_LABEL="\`$rev\` (scripts/build-release.sh)"
    fi
    PSDOCK=$(realpath "$PSDOCK")
    if [ -n "${BASELINE:-}" ]; then
        BASELINE=$(realpath "$BASELINE")
        BASELINE_LABEL=${BASELINE_LABEL:-\`$BASELINE\`}
        export BASELINE BASELINE_LABEL
    fi
    export PSDOCK PSDOCK_LABEL PSDOCK_BENCH_INNER=1
    exec unshare --mount --propagation private "$0" "$@"
fi

tmp=$(mktemp -d /tmp/psdock-bench.XXXXXX)
pids=()
# State directories on a tmpfs, as their defaults (/run/psdock, /run/crun,
# /run/runc) are on a host whose /run is a tmpfs (any systemd host); where /run
# is on a disk that discards freed blocks synchronously, each runtime's
# per-container state files would add a disk round trip to every run.
mkdir "$tmp/state"
mount -t tmpfs -o mode=0700 psdock-bench-state "$tmp/state"
export PSDOCK_STATE_DIR=$tmp/state/psdock
# Each container has its own id: runc and crun derive the cgroup path from it.
crun=(crun --root "$tmp/state/crun")
runc=(runc --root "$tmp/state/runc")
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # A runtime killed halfway leaves its container and cgroups behind.
    ip link del psdbench0 2>/dev/null || true
    iptables -w -t nat -D POSTROUTING -s 10.250.0.0/24 ! -o psdbench0 -j MASQUERADE 2>/dev/null || true
    iptables -w -D FORWARD -i psdbench0 -j ACCEPT 2>/dev/null || true
    iptables -w -D FORWARD -o psdbench0 -j ACCEPT 2>/dev/null || true
    for id in bench-crun bench-runc bench-crun-memory rss-crun rss-runc; do
        "${crun[@]}" delete --force "$id" >/dev/null 2>&1 || true
        "${runc[@]}" delete --force "$id" >/dev/null 2>&1 || true
    done
    # Deepest first; the namespace would drop them anyway when we exit.
    awk -v t="$tmp" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi

say() { printf '\n== %s\n' "$*" >&2; }

say "building the busybox image and the C helpers"
sh "$repo/scripts/busybox-image.sh" "$tmp/image"
mkdir "$tmp/c" "$tmp/sig"
gcc -O2 -Wall -Werror -o "$tmp/overlay-run" "$repo/bench/overlay-run.c"
# Static: it also runs inside the busybox image.
gcc -O2 -Wall -Werror -static -o "$tmp/sig/sigterm-latency" "$repo/bench/sigterm-latency.c"

# One overlay of the image for the peers, mounted here once (bwrap has no
# overlay option; crun and runc take a rootfs path).
mkdir -p "$tmp/peers/upper" "$tmp/peers/work" "$tmp/peers/rootfs"
mount -t overlay overlay \
    -o "lowerdir=$tmp/image,upperdir=$tmp/peers/upper,workdir=$tmp/peers/work" "$tmp/peers/rootfs"

bundle() { # NAME ARGS-AS-JSON [NAMESPACE-KEPT]
    mkdir "$tmp/$1"
    (cd "$tmp/$1" && runc spec)
    jq --arg root "$tmp/peers/rootfs" --argjson args "$2" --arg keep "${3:-}" '
        .process.terminal = false | .process.args = $args
        | .root = {path: $root, readonly: false}
        | .linux.namespaces |= map(select(.type == $keep or (.type != "network" and .type != "cgroup")))' \
        "$tmp/$1/config.json" >"$tmp/$1/config.json.new"
    mv "$tmp/$1/config.json.new" "$tmp/$1/config.json"
}
bundle bundle-true '["/bin/true"]'
bundle bundle-sleep '["sleep", "1000"]'
# With a network namespace of its own (crun and runc bring its lo up), for -net none.
bundle bundle-netns '["/bin/true"]' network
bundle bundle-true-memory '["/bin/true"]'
jq '.linux.resources.memory = {limit: 268435456}' "$tmp/bundle-true-memory/config.json" \
    >"$tmp/bundle-true-memory/config.json.new"
mv "$tmp/bundle-true-memory/config.json.new" "$tmp/bundle-true-memory/config.json"

# The machine may be shared: say how busy it was, as load average and as the
# share of time some task waited for a CPU or for I/O (PSI, if the kernel has it).
pressure() { awk '/^some/ { sub("avg10=", "", $2); print $2 "%" }' "/proc/pressure/$1" 2>/dev/null || echo n/a; }
busy() { echo "load $(cut -d' ' -f1 /proc/loadavg), CPU pressure $(pressure cpu), I/O pressure $(pressure io)"; }
if [ -n "${QUIET:-}" ]; then
    say "waiting for CPU and I/O pressure below $QUIET%"
    deadline=$((SECONDS + 600))
    until awk -v c="$(pressure cpu)" -v i="$(pressure io)" -v q="$QUIET" 'BEGIN { exit !(c + 0 < q && i + 0 < q) }'; do
        [ $SECONDS -lt $deadline ] || { echo "startup.sh: still busy after 10 minutes, measuring anyway" >&2; break; }
        sleep 2
    done
fi
busy_before=$(busy)
say "start-up: $warmup warm-up runs, then $runs runs each in $rounds rounds ($busy_before)"
# hyperfine runs each command's runs in one block. One block each would let a
# change in load between blocks skew the ratios, so every command gets a turn
# of runs/rounds runs in each round, in an order that rotates, and each median
# is over the runs of all rounds.
names=(c-floor psdock psdock-init crun runc bwrap host tini psdock-memory crun-memory)
cmds=(
    "$tmp/overlay-run $tmp/image $tmp/c /bin/true"
    "$PSDOCK -i $tmp/image -r $tmp/psdock-rootfs /bin/true"
    "$PSDOCK -init -i $tmp/image -r $tmp/psdock-init-rootfs /bin/true"
    "${crun[*]} run --bundle $tmp/bundle-true bench-crun"
    "${runc[*]} run --bundle $tmp/bundle-true bench-runc"
    "bwrap --bind $tmp/peers/rootfs / --proc /proc --dev /dev --unshare-pid --unshare-ipc --unshare-uts /bin/true"
    "/bin/true"
    "tini -s -- /bin/true"
    "$PSDOCK -i $tmp/image -r $tmp/psdock-memory-rootfs -memory 256m /bin/true"
    "${crun[*]} run --bundle $tmp/bundle-true-memory bench-crun-memory"
)
# An earlier build, in the same rounds: drift in the machine cannot skew
# the ratio between the two.
if [ -n "${BASELINE:-}" ]; then
    names+=(psdock-baseline)
    cmds+=("$BASELINE -i $tmp/image -r $tmp/baseline-rootfs /bin/true")
fi
per_round=$(((runs + rounds - 1) / rounds))
for ((r = 0; r < rounds; r++)); do
    args=()
    for ((i = 0; i < ${#names[@]}; i++)); do
        j=$(((i + r) % ${#names[@]}))
        args+=(-n "${names[j]}" "${cmds[j]}")
    done
    # A full warm-up before the first round; a short one after each switch.
    hyperfine -N --style none --warmup "$([ $r = 0 ] && echo "$warmup" || echo 2)" \
        --runs "$per_round" --export-json "$tmp/startup.$r.json" "${args[@]}" \
        >"$tmp/hyperfine.log" 2>&1 || { cat "$tmp/hyperfine.log" >&2; exit 1; }
    printf '.' >&2
done
echo >&2
runs=$((per_round * rounds))
# `-upper disk` on its own, afterwards: on a file system that scans past
# recently freed inodes for every new one (ext4 without a journal), its six
# directories a run would slow whatever else makes some in the same rounds.
say "start-up with -upper disk: $runs runs"
hyperfine -N --style none --warmup "$warmup" --runs "$runs" --export-json "$tmp/startup.disk.json" \
    -n psdock-disk "$PSDOCK -i $tmp/image -r $tmp/psdock-disk-rootfs -upper disk /bin/true" \
    >"$tmp/hyperfine.log" 2>&1 || { cat "$tmp/hyperfine.log" >&2; exit 1; }
# -net none and bridge on their own, afterwards, in rounds with the default
# and crun given a network namespace: the namespace's creation and the
# kernel's deferred teardown of the last one weigh on whatever runs next.
say "start-up with -net none and -net bridge: $runs runs each"
net_names=(psdock-host psdock-net-none crun-netns psdock-net-bridge)
net_cmds=(
    "$PSDOCK -i $tmp/image -r $tmp/net-host-rootfs /bin/true"
    "$PSDOCK -i $tmp/image -r $tmp/net-none-rootfs -net none /bin/true"
    "${crun[*]} run --bundle $tmp/bundle-netns bench-crun"
    "$PSDOCK -i $tmp/image -r $tmp/net-bridge-rootfs -net bridge -net-bridge psdbench0 -net-subnet 10.250.0.0/24 /bin/true"
)
for ((r = 0; r < rounds; r++)); do
    args=()
    for ((i = 0; i < ${#net_names[@]}; i++)); do
        j=$(((i + r) % ${#net_names[@]}))
        args+=(-n "${net_names[j]}" "${net_cmds[j]}")
    done
    hyperfine -N --style none --warmup "$([ $r = 0 ] && echo "$warmup" || echo 2)" \
        --runs "$per_round" --export-json "$tmp/startup.net.$r.json" "${args[@]}" \
        >"$tmp/hyperfine.log" 2>&1 || { cat "$tmp/hyperfine.log" >&2; exit 1; }
    printf '.' >&2
done
echo >&2
median_ms() {
    jq -rs --arg n "$1" '[.[].results[] | select(.command == $n) | .times[]] | sort
        | (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) * 1000' \
        "$tmp"/startup.*.json
}

# Starts a supervisor of `sleep` in the background, waits until sleep runs as
# its child, prints "VmRSS VmHWM" of the supervisor in KiB, then calls STOP PID.
rss() { # STOP COMMAND...
    local stop=$1 pid deadline=$((SECONDS + 20))
    shift
    "$@" >/dev/null 2>"$tmp/rss.err" &
    pid=$!
    pids+=("$pid")
    until pgrep -x -P "$pid" sleep >/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "startup.sh: $1 did not start sleep" >&2
            cat "$tmp/rss.err" >&2
            exit 1
        fi
        sleep 0.01
    done
    awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$pid/status"
    "$stop" "$pid"
    wait "$pid" || true
}
stop_term() { kill -TERM "$1"; }
stop_crun() { "${crun[@]}" kill rss-crun KILL; }
stop_runc() { "${runc[@]}" kill rss-runc KILL; }
say "memory while supervising sleep"
rss stop_term "$PSDOCK" -i "$tmp/image" -r "$tmp/rss-rootfs" sleep 1000 >"$tmp/rss.psdock"
rss stop_crun "${crun[@]}" run --bundle "$tmp/bundle-sleep" rss-crun >"$tmp/rss.crun"
rss stop_runc "${runc[@]}" run --bundle "$tmp/bundle-sleep" rss-runc >"$tmp/rss.runc"
rss stop_term tini -s -- sleep 1000 >"$tmp/rss.tini"
read -r psdock_rss psdock_hwm <"$tmp/rss.psdock"
read -r crun_rss crun_hwm <"$tmp/rss.crun"
read -r runc_rss runc_hwm <"$tmp/rss.runc"
read -r tini_rss tini_hwm <"$tmp/rss.tini"

say "SIGTERM to a trapping child: $signals signals each"
mkfifo "$tmp/sig/fifo"
latency() { "$tmp/sig/sigterm-latency" measure "$signals" "$tmp/sig/fifo" "$@"; }
latency "$PSDOCK" -i "$tmp/image" -r "$tmp/sig-rootfs" -v "$tmp/sig:/sig" \
    /sig/sigterm-latency trap /sig/fifo >"$tmp/sig.psdock"
latency tini -s -- "$tmp/sig/sigterm-latency" trap "$tmp/sig/fifo" >"$tmp/sig.tini"
latency "$tmp/sig/sigterm-latency" trap "$tmp/sig/fifo" >"$tmp/sig.direct"
read -r psdock_sig psdock_sig90 _ <"$tmp/sig.psdock"
read -r tini_sig tini_sig90 _ <"$tmp/sig.tini"
read -r direct_sig direct_sig90 _ <"$tmp/sig.direct"

busy_after=$(busy)

# ---- the table ------------------------------------------------------------
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
mib_of() { calc '%.1f' "$1 / 1024"; }
mib() { echo "$(mib_of "$1") MiB"; }
verdict() { # VALUE OP LIMIT
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo met; else echo missed; fi
}
psdock_ms=$(median_ms psdock)
# Verdicts are on values as printed, so that the table never reads "0.50×: missed".
ratio_of() { calc '%.2f' "$psdock_ms / $(median_ms "$1")"; }
ratio() { echo "$(ratio_of "$1")×"; }
ratio_ok() { verdict "$(ratio_of "$1")" "$2" "$3"; }
ms() { calc '%.2f ms' "$(median_ms "$1")"; }
# One measure against another, both not psdock's plain start-up.
ratio_to() { calc '%.2f×' "$(median_ms "$1") / $(median_ms "$2")"; }
version() { "$@" --version 2>/dev/null | head -1 | grep -oE '[0-9]+(\.[0-9]+)+' | head -1; }
size_kib=$(($(stat -c %s "$PSDOCK") / 1024))
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
# Directory creation and removal under ROOTFS's parent weigh on every start.
fs=$(findmnt -no FSTYPE -T "$tmp")
if findmnt -no OPTIONS -T "$tmp" | tr ',' '\n' | grep -qx discard; then fs="$fs mounted with discard"; fi

baseline_row=
if [ -n "${BASELINE:-}" ]; then
    baseline_row="| psdock $BASELINE_LABEL, an earlier build, in the same rounds | $(ms psdock-baseline) | $(ratio psdock-baseline) | ≤ 1.15×: $(ratio_ok psdock-baseline '<=' 1.15) |
"
fi
table=$(cat <<EOF
| Measure | Result | psdock ÷ this | Target |
|---|---|---|---|
| **Start-up** (median of $runs, in $rounds rounds): \`psdock -i IMG -r ROOTFS /bin/true\`, overlay set-up and teardown included | **$(ms psdock)** | | |
$baseline_row| \`psdock -upper disk\` (upper directory on ROOTFS's file system; $runs runs after the rest) | $(ms psdock-disk) | $(ratio psdock-disk) | |
| \`crun run\` $(version crun), over the same overlay mounted beforehand | $(ms crun) | $(ratio crun) | ≤ 0.5×: $(ratio_ok crun '<=' 0.5) |
| \`psdock -net none\` (rounds of their own, after the rest) | $(ms psdock-net-none) | $(ratio_to psdock-net-none psdock-host) of the default in those rounds | |
| \`crun run\` with a network namespace of its own | $(ms crun-netns) | $(ratio_to psdock-net-none crun-netns) (\`-net none\` ÷ this) | |
| \`psdock -net bridge\` (a veth pair, an address, a route; the bridge made once) | $(ms psdock-net-bridge) | $(ratio_to psdock-net-bridge psdock-host) of the default in those rounds | |
| \`psdock -memory 256m\` (a cgroup made, joined and removed per run; in the rounds) | $(ms psdock-memory) | $(ratio psdock-memory) | |
| \`crun run\` with the same memory limit (psdock -memory ÷ this) | $(ms crun-memory) | $(ratio_to psdock-memory crun-memory) | |
| \`runc run\` $(version runc), over the same overlay mounted beforehand | $(ms runc) | $(ratio runc) | ≤ 0.25×: $(ratio_ok runc '<=' 0.25) |
| \`bwrap\` $(version bwrap), over the same overlay mounted beforehand | $(ms bwrap) | $(ratio bwrap) | |
| bare C clone+tmpfs+overlay+chroot (\`bench/overlay-run.c\`) | $(ms c-floor) | $(ratio c-floor) | aim 1.5×: $(ratio_ok c-floor '<=' 1.5) |
| host fork+exec of \`/bin/true\` (floor) | $(ms host) | $(ratio host) | |
| **\`-init\`**: \`psdock -init\`, same rounds | $(ms psdock-init) | $(ratio psdock-init) | cost < 0.3 ms: $(verdict "$(calc '%.3f' "$(median_ms psdock-init) - $psdock_ms")" '<' 0.3) ($(calc '%+.3f ms' "$(median_ms psdock-init) - $psdock_ms")) |
| \`tini -s -- /bin/true\` on the host, the peer's cost over a fork+exec | $(ms tini) | $(ratio tini) | $(calc '%+.3f ms' "$(median_ms tini) - $(median_ms host)") |
| **Memory** supervising \`sleep\`: psdock VmRSS (VmHWM) | **$(mib "$psdock_rss") ($(mib "$psdock_hwm"))** | | ≤ 3 MiB: $(verdict "$(mib_of "$psdock_hwm")" '<=' 3) |
| crun's parent process | $(mib "$crun_rss") ($(mib "$crun_hwm")) | $(calc '%.2f×' "$psdock_rss / $crun_rss") | |
| runc's parent process | $(mib "$runc_rss") ($(mib "$runc_hwm")) | $(calc '%.2f×' "$psdock_rss / $runc_rss") | |
| tini $(version tini) | $(mib "$tini_rss") ($(mib "$tini_hwm")) | $(calc '%.2f×' "$psdock_rss / $tini_rss") | |
| **SIGTERM** to a trapping child (median of $signals, p90): through psdock | **$(calc '%.3f ms' "$psdock_sig / 1000") ($(calc '%.3f' "$psdock_sig90 / 1000"))** | | < 1 ms: $(verdict "$(calc '%.3f' "$psdock_sig / 1000")" '<' 1) |
| through tini | $(calc '%.3f ms' "$tini_sig / 1000") ($(calc '%.3f' "$tini_sig90 / 1000")) | $(calc '%.2f×' "$psdock_sig / $tini_sig") | |
| sent to the child directly (floor) | $(calc '%.3f ms' "$direct_sig / 1000") ($(calc '%.3f' "$direct_sig90 / 1000")) | $(calc '%.2f×' "$psdock_sig / $direct_sig") | |

psdock $PSDOCK_LABEL, binary $size_kib KiB; busybox image; ROOTFS on $fs, state directories on tmpfs; $(nproc) cores ($cpu), Linux $(uname -r),
$(date -u +%Y-%m-%d), by \`bench/startup.sh\`. Before: $busy_before; after: $busy_after.
EOF
)
mkdir -p "$repo/bench/results"
printf '%s\n' "$table" >"$repo/bench/results/startup.md"
printf '\n%s\n' "$table"
