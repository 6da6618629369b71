#!/usr/bin/env bash
# A/B of GET throughput through a master for two revisions, measured back to back in one run:
# each revision's `tiercache local` (a master and three auxiliaries) is loaded in turn by the
# same tiercache-bench, ROUNDS times, alternating. Prints each run and the medians' ratio.
#
#   scripts/ab-get.sh <rev-a> [rev-b, default: the working tree]
#   ROUNDS=3 DURATION=10 CONNS=64 scripts/ab-get.sh 4287f42
# AB_TARGET_DIR keeps the other revision's build between runs (default: a temporary dir).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)
REV_A=${1:?usage: scripts/ab-get.sh <rev-a> [rev-b]}
REV_B=${2:-}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
WORK=$(mktemp -d /tmp/tiercache-ab.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  git -C "$ROOT" worktree remove --force "$WORK/src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A revision builds in a target dir of its own (cargo would mix two copies of one workspace
# crate in one), the working tree in target/; each binary is copied out.
build() { # build <label> <rev or empty for the working tree>
  local dir=$ROOT target=$ROOT/target
  if [ -n "$2" ]; then
    git -C "$ROOT" worktree add --detach -q "$WORK/src" "$2"
    dir=$WORK/src
    target=${AB_TARGET_DIR:-$WORK/target}
  fi
  CARGO_TARGET_DIR=$target cargo build --release -q --manifest-path "$dir/Cargo.toml" --bin tiercache
  cp "$target/release/tiercache" "$WORK/tiercache-$1"
  [ -z "$2" ] || git -C "$ROOT" worktree remove --force "$WORK/src"
}
echo "== building A ($REV_A) and B (${REV_B:-working tree})"
build A "$REV_A"
build B "$REV_B"
cargo build --release -q -p tiercache-bench
BENCH=$ROOT/target/release/tiercache-bench

run() { # run <label> <round>
  local port pid
  port=$(free_port)
  mkdir -p "$WORK/backup-$1"
  (cd "$WORK/backup-$1" && exec env PORT="$port" REDIS_PORT=0 BIND_ADDR=127.0.0.1 BACKUP_INTERVAL=0 RUST_LOG=warn \
    "$WORK/tiercache-$1" local >>"$WORK/$1.log" 2>&1) &
  pid=$!
  PIDS+=("$pid")
  wait_for 30 curl -sf "http://127.0.0.1:$port/health"
  "$BENCH" http --url "http://127.0.0.1:$port" --connections "$CONNS" --duration "$DURATION" --get-ratio 1 \
    --keys 10000 --preload --label "$1" --json "$WORK/$1-$2.json" >/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 -c "import json,sys; print('%s round %s: %.0f GET/s' % (sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))['requests_per_sec']))" "$1" "$2" "$WORK/$1-$2.json"
}
echo "== $ROUNDS rounds of $DURATION s, $CONNS connections, 100% GET of 10,000 keys"
for r in $(seq 1 "$ROUNDS"); do
  run A "$r"
  run B "$r"
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
med = {v: statistics.median(json.load(open(f"{work}/{v}-{r}.json"))["requests_per_sec"] for r in range(1, rounds + 1)) for v in "AB"}
print(f"median A {med['A']:.0f} GET/s, B {med['B']:.0f} GET/s: B/A = {med['B'] / med['A']:.3f}")
PY
