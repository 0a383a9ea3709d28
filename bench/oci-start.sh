#!/usr/bin/env bash
# The second start from a cached OCI image against the start from a plain image
# directory with the same content, side by side in one run. The
# target: the OCI start takes at most 1.2x the directory's.
# Usage: bench/oci-start.sh [RUNS]   (as root; builds the release binary unless
#        PSDOCK names one; needs busybox-static, umoci, skopeo and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
limit=1.2

if [ -z "${PSDOCK:-}" ]; then
    PSDOCK="$(scripts/build-release.sh --quiet)/psdock"
fi
work=$(mktemp -d /tmp/psdock-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/busybox-image.sh "$work/image"
scripts/oci-image.sh "$work/image" "$work/layout"
export PSDOCK_CACHE_DIR="$work/cache" PSDOCK_STATE_DIR="$work/state"

# The first start unpacks the layer into the cache; every start measured after
# it is a second start.
"$PSDOCK" -i "$work/layout" -image-ref plain -r "$work/rootfs" true

# Interleaved, one start of each in turn, so that the load of a shared machine
# weighs on both alike (hyperfine runs one command's series after the other's).
python3 - "$PSDOCK" "$work" "$runs" "$limit" <<'PY'
import statistics, subprocess, sys, time
psdock, work, runs, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
common = ["-r", f"{work}/rootfs", "true"]
starts = {
    "directory": [psdock, "-i", f"{work}/image"] + common,
    "oci-cached": [psdock, "-i", f"{work}/layout", "-image-ref", "plain"] + common,
    "oci-cached-5-layers": [psdock, "-i", f"{work}/layout", "-image-ref", "layers"] + common,
}
times = {name: [] for name in starts}
for i in range(runs + 10):
    order = list(starts.items())
    if i % 2:
        order.reverse()
    for name, argv in order:
        t = time.perf_counter()
        subprocess.run(argv, check=True)
        if i >= 10:  # the first rounds warm the caches
            times[name].append(time.perf_counter() - t)
base = statistics.median(times["directory"])
for name, t in times.items():
    t.sort()
    med = statistics.median(t)
    print(f"{name:20} min {t[0]*1e3:6.2f} ms  p25 {t[len(t)//4]*1e3:6.2f} ms  "
          f"median {med*1e3:6.2f} ms  {med/base:.3f}x the directory")
ratio = statistics.median(times["oci-cached"]) / base
if ratio > limit:
    print(f"FAIL: the second start from a cached OCI image is {ratio:.3f}x, over {limit}x")
    sys.exit(1)
print(f"ok: the second start from a cached OCI image is {ratio:.3f}x, within {limit}x")
PY
