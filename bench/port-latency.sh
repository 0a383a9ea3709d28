#!/usr/bin/env bash
# Port probe benchmark, for each probe (netlink, procfs, lsof):
#  - latency: from the moment the command is released to listen until the
#    `running` request arrives at a loopback HTTP server, median and p90 over
#    RUNS runs. The command waits on a FIFO, then execs `nc -l`: the figure
#    includes that exec, so it is an upper bound of listen() -> running.
#  - waiting cost: psdock's CPU time (its own and its children's, so lsof and
#    pgrep count) while it waits 10 s for a port nobody binds, less the CPU of
#    the same run without -bind-port.
# Targets for the auto-picked probe (netlink): median <= 10 ms, waiting cost
# <= 1% of one core.
#
# Usage: bench/port-latency.sh [RUNS]     (as root; RUNS defaults to 50)
# Env: PSDOCK=path to a psdock binary (default: the build of scripts/build-release.sh),
#      PROBES="netlink procfs lsof", WAIT=10 (seconds of waiting to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
[ "$(id -u)" = 0 ] || { echo "port-latency.sh: run as root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "port-latency.sh: needs python3" >&2; exit 1; }
if [ -z "${PSDOCK:-}" ]; then
    PSDOCK="$(scripts/build-release.sh --quiet)/psdock"
fi
work=$(mktemp -d /tmp/psdock-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh scripts/busybox-image.sh "$work/image" >/dev/null

PSDOCK="$PSDOCK" WORK="$work" RUNS="$runs" PROBES="${PROBES:-netlink procfs lsof}" \
    WAIT="${WAIT:-10}" python3 - <<'PY'
import http.server, os, random, resource, socket, statistics, subprocess, threading, time, json

psdock, work = os.environ["PSDOCK"], os.environ["WORK"]
runs, wait = int(os.environ["RUNS"]), float(os.environ["WAIT"])
image, rootfs, ctl = f"{work}/image", f"{work}/rootfs", f"{work}/ctl"
os.makedirs(ctl, exist_ok=True)
fifo = f"{ctl}/go"
os.mkfifo(fifo)

arrivals = []          # (monotonic time, status)
cond = threading.Condition()

class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_PUT(self):
        now = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = json.loads(body)["ps"]["status"]
        with cond:
            arrivals.append((now, status))
            cond.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/"

def free_port():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::", 0))
        return s.getsockname()[1]

def wait_status(status, since, timeout=30):
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            for t, s in arrivals[since:]:
                if s == status:
                    return t
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"no {status!r} within {timeout}s")
            cond.wait(left)

def one_latency(probe):
    port = free_port()
    since = len(arrivals)
    p = subprocess.Popen([psdock, "-i", image, "-r", rootfs, "-web-hook", url,
                          "-bind-port", str(port), "-port-probe", probe, "-v", f"{ctl}:/ctl",
                          "sh", "-c", f"read _ < /ctl/go; exec nc -l -p {port}"],
                         stdin=subprocess.DEVNULL)
    wait_status("starting", since)
    # Released at a random phase of the probe's polling, not in step with it.
    time.sleep(random.uniform(0, 0.6))
    with open(fifo, "w") as f:      # opens once the command waits on it
        released = time.monotonic()
        f.write("go\n")
    running = wait_status("running", since)
    socket.create_connection(("127.0.0.1", port)).close()
    if p.wait() != 0:
        raise SystemExit(f"psdock exited {p.returncode}")
    return (running - released) * 1000

def cpu_of(args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

base = [psdock, "-i", image, "-r", rootfs, "-web-hook", url]
idle = ["sleep", str(wait)]
baseline = min(cpu_of(base + idle) for _ in range(2))

print(f"runs per probe: {runs}; waiting measured over {wait:g} s "
      f"(baseline run without -bind-port: {baseline * 1000:.1f} ms CPU)")
print(f"{'probe':8} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'waiting CPU':>12}")
for probe in os.environ["PROBES"].split():
    lat = sorted(one_latency(probe) for _ in range(runs))
    p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
    cpu = cpu_of(base + ["-bind-port", str(free_port()), "-port-probe", probe] + idle) - baseline
    share = max(cpu, 0) / wait * 100
    print(f"{probe:8} {statistics.median(lat):10.1f} {p90:8.1f} {lat[-1]:8.1f} "
          f"{share:10.2f} %")
PY
