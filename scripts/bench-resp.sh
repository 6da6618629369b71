#!/usr/bin/env bash
# RESP throughput in one run: `redis-benchmark -c 64 -d 100` (SET, GET, GET with -P 16, and GET
# from 10,000 connections)
# against one tiercache master over three auxiliaries (REPLICAS=1 and 2 with one data thread,
# and REPLICAS=1 with a data thread per CPU), Redis directly, and
# twemproxy (Debian's nutcracker, ketama) in front of three Redis servers: the same two-tier
# shape. Writes docs/benchmarks-resp.md and the chart docs/benchmarks-resp.svg. Everything runs
# on loopback and stops by itself.
#
#   scripts/bench-resp.sh            # N=200000 requests per line, median of ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-docs/benchmarks-resp.md}
SVG=${SVG:-docs/benchmarks-resp.svg}
TOKEN=bench-internal-token

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || need+=(nutcracker)
apt_install "${need[@]}"

cargo build --release --workspace --bins -q
TC=$ROOT/target/release/tiercache

WORK=$(mktemp -d /tmp/tiercache-bench-resp.XXXXXX)
PIDS=()
cleanup() {
  { for p in "${PIDS[@]}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

RESULTS=$WORK/results.csv
: >"$RESULTS"
# 10,000 clients need as many descriptors in redis-benchmark, twemproxy and the master.
MANY=10000
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MANY + 1000)) ]; then
  echo "the open-file limit is $(ulimit -n): the -c $MANY line is left out"
  MANY=0
fi
bench() { # bench <label> <port>: lines of "label,test,rps,p50,p99"
  local label=$1 port=$2 args
  for args in "-c 64 -t set" "-c 64 -t get" "-c 64 -t get -P 16" "-c $MANY -t get"; do
    [ "$args" = "-c 0 -t get" ] && continue
    # shellcheck disable=SC2086
    redis-benchmark -p "$port" -d 100 -n "$N" -r 100000 $args -q --csv 2>/dev/null |
      python3 -c '
import csv, sys
label, extra = sys.argv[1], sys.argv[2]
for row in csv.reader(sys.stdin):
    if not row or row[0] == "test":
        continue
    print(f"{label},{row[0] + extra},{float(row[1]):.0f},{row[4]},{row[6]}")
' "$label" "$(case $args in *-P*) echo " -P 16";; "-c $MANY"*) echo " -c $MANY";; esac)" | tee -a "$RESULTS"
  done
}

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
RP=$(free_port)
start_redis "$WORK" "$RP"
start_twemproxy "$WORK"
start_zookeeper "$WORK/zk"
# Three tiercache clusters, one master over three auxiliaries each: REPLICAS=1 and 2 with one
# data thread in the master (twemproxy is one thread too: the same cores), and REPLICAS=1 with
# the default, a data thread per CPU the master may use.
declare -A TC_PORT
CLUSTERS=("1 1" "2 1" "1 $(nproc)")
for cluster in "${CLUSTERS[@]}"; do
  read -r replicas threads <<<"$cluster"
  name=r$replicas-t$threads
  env_common=(INTERNAL_TOKEN=$TOKEN ZK_SERVERS=127.0.0.1:$ZKPORT ZK_ROOT=/$name BIND_ADDR=127.0.0.1
    ADVERTISE_HOST=127.0.0.1 RUST_LOG=warn REPLICAS=$replicas BACKUP_INTERVAL=0)
  for i in 0 1 2; do
    env "${env_common[@]}" NODE_ID=aux-$i PORT="$(free_port)" DATA_PORT="$(free_port)" BACKUP_DIR="$WORK/$name-$i" \
      "$TC" auxiliary >>"$WORK/aux-$name-$i.log" 2>&1 &
    PIDS+=($!)
  done
  MP=$(free_port)
  TC_PORT[$name]=$(free_port)
  env "${env_common[@]}" NODE_ID=master-1 PORT="$MP" REDIS_PORT="${TC_PORT[$name]}" DATA_THREADS="$threads" \
    "$TC" master >>"$WORK/master-$name.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 bash -c "curl -s http://127.0.0.1:$MP/health | grep -q '\"auxiliaries\":3'"
done
# Alternating rounds (each target once per round), so a slow minute of a noisy machine
# falls on every target alike; the tables show the median of the rounds.
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  bench "Redis" "$RP"
  bench "twemproxy" "$TWEM_PORT"
  for cluster in "${CLUSTERS[@]}"; do
    read -r replicas threads <<<"$cluster"
    bench "tiercache R=$replicas ($threads data thread$([ "$threads" = 1 ] || echo s))" "${TC_PORT[r$replicas-t$threads]}"
  done
done

python3 - "$RESULTS" "$OUT" "$SVG" "$N" "$ROUNDS" <<'PY'
import csv, sys, datetime, statistics
results, out, svg, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rows = [r for r in csv.reader(open(results)) if r]
labels = list(dict.fromkeys(r[0] for r in rows))
tests = list(dict.fromkeys(r[1] for r in rows))
# The median round of each line (by requests/s), with that round's latencies.
val = {}
for key in dict.fromkeys((r[0], r[1]) for r in rows):
    runs = sorted((float(r[2]), r[3], r[4]) for r in rows if (r[0], r[1]) == key)
    val[key] = runs[(len(runs) - 1) // 2]
twem = {t: val.get(("twemproxy", t)) for t in tests}
redis = {t: val.get(("Redis", t)) for t in tests}
lines = [
    "# RESP benchmark",
    "",
    f"`scripts/bench-resp.sh`, {datetime.date.today()}: `redis-benchmark -c 64 -d 100 -n {n} -r 100000` (and `-c 10000` on the last line), "
    f"the median of {rounds} alternating rounds (each target once per round), "
    "every target on this machine's loopback. twemproxy is Debian's nutcracker (ketama) over three Redis servers; "
    "tiercache is one master over three auxiliaries (release build), with one data thread (`DATA_THREADS=1`: "
    "twemproxy is one thread too) and with the default, a data thread per CPU the master may use.",
    "",
    "| target | test | requests/s | p50 ms | p99 ms | vs twemproxy | vs Redis |",
    "|---|---|---:|---:|---:|---:|---:|",
]
for l in labels:
    for t in tests:
        if (l, t) not in val:
            continue
        rps, p50, p99 = val[(l, t)]
        vt = f"{rps / twem[t][0]:.2f}x" if twem.get(t) else ""
        vr = f"{rps / redis[t][0]:.2f}x" if redis.get(t) else ""
        lines.append(f"| {l} | {t} | {rps:,.0f} | {p50} | {p99} | {vt} | {vr} |")
lines += ["", "Targets: SET and GET ≥ 1.0× twemproxy with a p99 no worse (aim 1.2×); GET -P 16 ≥ 0.4× Redis "
          "(aim 0.6×); SET with two copies (R=2) ≥ 0.7× twemproxy, which keeps one (aim 0.9×); GET from 10,000 "
          "connections ≥ 1.0× twemproxy with a p99 no worse (aim 1.5×).", "",
          f"![requests per second]({svg.split('/')[-1]})", ""]
# The hand-kept log of optimisations (before/after figures) survives a new run.
try:
    old = open(out).read()
    log = old[old.index("## Optimisation log"):] if "## Optimisation log" in old else ""
except OSError:
    log = ""
open(out, "w").write("\n".join(lines) + ("\n" + log if log else ""))
# The chart: one panel per test, the references beside tiercache (scripts/chart.py).
import subprocess
chart_rows = "".join(f"{t},{l},{val[(l, t)][0]}\n" for t in tests for l in labels if (l, t) in val)
subprocess.run(["python3", "scripts/chart.py", svg, "RESP: redis-benchmark -d 100, one master over three auxiliaries"],
               input=chart_rows, text=True, check=True)
print(open(out).read())
PY
