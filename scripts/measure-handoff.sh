#!/usr/bin/env bash
# How long a graceful leave takes: one master over three auxiliaries (release build,
# REPLICAS=2), KEYS keys of 100 bytes written over RESP, then SIGTERM to one auxiliary and the
# time until it exits (leave ZooKeeper, two hand-off passes, final snapshot). Kubernetes'
# terminationGracePeriodSeconds for auxiliaries must exceed it (deploy/kubernetes). Loopback
# only; stops by itself.
#
#   scripts/measure-handoff.sh              # KEYS=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
KEYS=${KEYS:-1000000}
TOKEN=handoff-internal-token

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
apt_install "${need[@]}"
cargo build --release -p tiercache -q
TC=$(pwd)/target/release/tiercache

WORK=$(mktemp -d /tmp/tiercache-handoff.XXXXXX)
PIDS=()
cleanup() {
  { for p in "${PIDS[@]}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

start_zookeeper "$WORK/zk"
env_common=(INTERNAL_TOKEN=$TOKEN ZK_SERVERS=127.0.0.1:$ZKPORT BIND_ADDR=127.0.0.1 ADVERTISE_HOST=127.0.0.1
  RUST_LOG=info BACKUP_INTERVAL=3600)
for i in 0 1 2; do
  env "${env_common[@]}" NODE_ID=aux-$i PORT="$(free_port)" DATA_PORT="$(free_port)" BACKUP_DIR="$WORK/b$i" \
    CACHE_MAX_BYTES=$((4 << 30)) CACHE_SIZE=$((KEYS * 2)) "$TC" auxiliary >>"$WORK/aux-$i.log" 2>&1 &
  PIDS+=($!)
done
LEAVER=${PIDS[-1]}
MP=$(free_port)
RP=$(free_port)
env "${env_common[@]}" NODE_ID=master-1 PORT="$MP" REDIS_PORT="$RP" REPLICAS=2 "$TC" master >>"$WORK/master.log" 2>&1 &
PIDS+=($!)
wait_for 30 bash -c "curl -s http://127.0.0.1:$MP/health | grep -q '\"auxiliaries\":3'"
sleep 6 # the auxiliaries' catch-up (5 s after they register)
redis-benchmark -p "$RP" -c 32 -P 16 -d 100 -n "$KEYS" -r "$KEYS" -t set -q >/dev/null 2>&1
# -r draws keys at random: count what is really there.
copies=$(curl -s "http://127.0.0.1:$MP/nodes" | python3 -c 'import json,sys; print(sum(a["keys"] or 0 for a in json.load(sys.stdin)["auxiliaries"]))')
echo "== $copies copies (REPLICAS=2) on three auxiliaries; SIGTERM to aux-2"
t0=$(date +%s%N)
kill -TERM "$LEAVER"
while kill -0 "$LEAVER" 2>/dev/null; do sleep 0.05; done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "== aux-2 exited ${ms} ms after SIGTERM"
grep -E "handed keys|snapshot|left ZooKeeper" "$WORK/aux-2.log" | sed 's/^/   /' | cut -c1-200
