#!/usr/bin/env bash
# Where a RESP request's CPU goes: one tiercache master over three auxiliaries (REPLICAS=1,
# release build) under `redis-benchmark -c 64 -d 100` GET (or TEST=set), with twemproxy over
# three Redis servers measured the same way in the same run. Prints CPU microseconds per request
# for every process (from /proc/<pid>/stat), then the hottest symbols of the master and of one
# auxiliary from `perf record` (software clock; this machine has no hardware counters).
# Loopback only; stops by itself.
#
#   scripts/profile-resp.sh              # N=300000 GET
#   TEST=set scripts/profile-resp.sh
#   TC=/tmp/tiercache-before PERF=0 scripts/profile-resp.sh   # another binary; CPU only
#   TC=/tmp/tiercache-before PERF=stat scripts/profile-resp.sh  # CPU, system calls and context switches; no profile
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)
N=${N:-300000}
TEST=${TEST:-get}
TOKEN=profile-internal-token

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || need+=(nutcracker)
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
apt_install "${need[@]}"

PERF=${PERF:-1}
if [ -z "${TC:-}" ]; then
  # Symbols for perf: a release build with debug line tables, in its own target directory.
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/profile \
    cargo build --release -p tiercache -q
  TC=$ROOT/target/profile/release/tiercache
fi

WORK=$(mktemp -d /tmp/tiercache-profile.XXXXXX)
PIDS=()
cleanup() {
  { for p in "${PIDS[@]}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure <label> <port> <name=pid...>: runs the benchmark, prints µs of CPU per request.
measure() {
  local label=$1 port=$2; shift 2
  declare -A before
  for np in "$@"; do before[$np]=$(ticks "${np#*=}"); done
  local t0 t1 out
  # System calls and context switches per request, where perf may count them.
  declare -A stat
  if [ "$PERF" != 0 ] && command -v perf >/dev/null 2>&1; then
    for np in "$@"; do
      perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "${np#*=}" -o "$WORK/stat.${np%%=*}" 2>/dev/null &
      stat[$np]=$!
    done
    sleep 0.5
  fi
  t0=$(date +%s.%N)
  out=$(redis-benchmark -p "$port" -c 64 -d 100 -n "$N" -r 100000 -t "$TEST" --csv 2>/dev/null |
    awk -F'"' 'NR == 2 {print $4 " requests/s, p50 " $10 " ms, p99 " $14 " ms"}')
  t1=$(date +%s.%N)
  for np in "${!stat[@]}"; do kill -INT "${stat[$np]}" 2>/dev/null || true; done
  for np in "${!stat[@]}"; do wait "${stat[$np]}" 2>/dev/null || true; done
  echo "== $label: $out"
  local total=0
  for np in "$@"; do
    local d=$(($(ticks "${np#*=}") - before[$np])) counts=""
    total=$((total + d))
    if [ -s "$WORK/stat.${np%%=*}" ]; then
      counts=$(awk -F, -v n="$N" '$3 ~ /sys_enter/ {s = $1} $3 ~ /context-switches/ {c = $1}
        END {printf "  %.2f syscalls, %.2f context switches", s / n, c / n}' "$WORK/stat.${np%%=*}")
    fi
    printf '   %-12s %6.1f µs/request%s\n' "${np%%=*}" "$(echo "$d * 1000000 / $HZ / $N" | bc -l)" "$counts"
  done
  printf '   %-12s %6.1f µs/request (wall %.1f s)\n' "all" "$(echo "$total * 1000000 / $HZ / $N" | bc -l)" \
    "$(echo "$t1 - $t0" | bc -l)"
}

echo "== twemproxy (ketama) over three Redis servers"
start_twemproxy "$WORK"
measure "twemproxy $TEST" "$TWEM_PORT" "${TWEM_PROCS[@]}"

start_zookeeper "$WORK/zk"
env_common=(INTERNAL_TOKEN=$TOKEN ZK_SERVERS=127.0.0.1:$ZKPORT BIND_ADDR=127.0.0.1
  ADVERTISE_HOST=127.0.0.1 RUST_LOG=warn REPLICAS=1 BACKUP_INTERVAL=0)
tc=()
for i in 0 1 2; do
  env "${env_common[@]}" NODE_ID=aux-$i PORT="$(free_port)" DATA_PORT="$(free_port)" BACKUP_DIR="$WORK/b$i" \
    "$TC" auxiliary >>"$WORK/aux-$i.log" 2>&1 &
  PIDS+=($!)
  tc+=("aux-$i=$!")
done
MP=$(free_port)
RP=$(free_port)
env "${env_common[@]}" NODE_ID=master-1 PORT="$MP" REDIS_PORT="$RP" "$TC" master >>"$WORK/master.log" 2>&1 &
PIDS+=($!)
MASTER=$!
tc=("master=$MASTER" "${tc[@]}")
wait_for 30 bash -c "curl -s http://127.0.0.1:$MP/health | grep -q '\"auxiliaries\":3'"
[ "$TEST" = get ] && redis-benchmark -p "$RP" -c 64 -d 100 -n 100000 -r 100000 -t set -q >/dev/null 2>&1
measure "tiercache $TEST" "$RP" "${tc[@]}"

[ "$PERF" = 1 ] || exit 0
AUX0=${tc[1]#*=}
perf record -F 499 -g -o "$WORK/master.perf" -p "$MASTER" -- sleep 8 >/dev/null 2>&1 &
perf_m=$!
perf record -F 499 -g -o "$WORK/aux.perf" -p "$AUX0" -- sleep 8 >/dev/null 2>&1 &
perf_a=$!
timeout 9 redis-benchmark -p "$RP" -c 64 -d 100 -n 100000000 -r 100000 -t "$TEST" -q >/dev/null 2>&1 || true
wait "$perf_m" "$perf_a" || true
for who in master aux; do
  echo "== perf: $who, self time by symbol (top 25)"
  perf report -i "$WORK/$who.perf" --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed 's/ *-  *- *$//' | head -25 || true
  echo "== perf: $who, time by shared object"
  perf report -i "$WORK/$who.perf" --no-children --sort dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | sed 's/ *-  *- *$//' | head -6 || true
done
