#!/usr/bin/env bash
# Heap profile of an auxiliary holding ENTRIES entries (16-byte keys, 100-byte values): runs it
# under valgrind's massif, fills it with tiercache-bench, stops it, and prints where the bytes
# of the peak snapshot were allocated, per entry. Everything runs on loopback and stops by itself.
#
#   scripts/memory-profile.sh                  # 1M entries (massif slows the fill about 3x)
#   ENTRIES=200000 OUT=/tmp/profile.md scripts/memory-profile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)
ENTRIES=${ENTRIES:-1000000}
OUT=${OUT:-/dev/stdout}
TOKEN=profile-internal-token

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
apt_install "${need[@]}"
cargo build --release --workspace --bins -q

WORK=$(mktemp -d /tmp/tiercache-profile.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_zookeeper "$WORK/zk"

PORT=$(free_port); DATA=$(free_port)
env INTERNAL_TOKEN=$TOKEN ZK_SERVERS=127.0.0.1:$ZKPORT BIND_ADDR=127.0.0.1 ADVERTISE_HOST=127.0.0.1 \
  ZK_ROOT=/profile NODE_ID=profiled PORT="$PORT" DATA_PORT="$DATA" BACKUP_DIR="$WORK/backup" BACKUP_INTERVAL=3600 \
  CACHE_SIZE=5000000 CACHE_MAX_BYTES=4294967296 RUST_LOG=warn \
  valgrind --tool=massif --depth=40 --massif-out-file="$WORK/massif.out" \
  "$ROOT/target/release/tiercache" auxiliary >"$WORK/aux.log" 2>&1 &
AUX=$!
PIDS+=($AUX)
wait_for 180 curl -sf "http://127.0.0.1:$PORT/health"
"$ROOT/target/release/tiercache-bench" fill --data-addr "127.0.0.1:$DATA" --token "$TOKEN" \
  --entries "$ENTRIES" --value-size 100 >&2
kill -TERM "$AUX"
wait_for 300 bash -c "! kill -0 $AUX"

python3 - "$WORK/massif.out" "$ENTRIES" >"$OUT" <<'EOF'
# Reads massif's own output format: snapshots of "mem_heap_B", "mem_heap_extra_B" and a tree
# whose first-level children are allocation sites with their call stacks below them.
import re, sys
path, entries = sys.argv[1], int(sys.argv[2])
snaps, cur = [], None
for line in open(path):
    line = line.rstrip("\n")
    if line.startswith("snapshot="):
        cur = {"heap": 0, "extra": 0, "tree": []}
        snaps.append(cur)
    elif line.startswith("mem_heap_B="):
        cur["heap"] = int(line.split("=")[1])
    elif line.startswith("mem_heap_extra_B="):
        cur["extra"] = int(line.split("=")[1])
    elif cur is not None and re.match(r"^\s*n\d+:", line):
        cur["tree"].append(line)
peak = max((s for s in snaps if s["tree"]), key=lambda s: s["heap"])
# First-level children of the root are indented by one space; their subtree follows.
groups, g = [], None
for line in peak["tree"][1:]:
    if re.match(r"^ n\d+:", line):
        g = [line]
        groups.append(g)
    elif g is not None:
        g.append(line)
def size(line):
    return int(re.match(r"^\s*n\d+:\s*(\d+)", line).group(1))
kinds = {"LRU slab nodes (block handle, version, two 4-byte links)": 0,
         "LRU hash table (4-byte slab indices and control bytes)": 0,
         "entry block (header, key, value)": 0, "everything else": 0}
for g in groups:
    text = "\n".join(g)
    # Both LRU allocations happen under SlabLru::push_new; the table's under hashbrown.
    if "hashbrown" in text:
        k = "LRU hash table (4-byte slab indices and control bytes)"
    elif "SlabLru" in text:
        k = "LRU slab nodes (block handle, version, two 4-byte links)"
    elif "tiercache_store::Store::apply_inner" in text:
        k = "entry block (header, key, value)"
    else:
        k = "everything else"
    kinds[k] += size(g[0])
print(f"Peak heap of the auxiliary after {entries} entries (massif, `scripts/memory-profile.sh`):\n")
print("| allocated for | bytes | per entry |")
print("|---|---:|---:|")
for k, v in kinds.items():
    print(f"| {k} | {v:,} | {v / entries:.1f} |")
print(f"| malloc headers and rounding (massif's estimate) | {peak['extra']:,} | {peak['extra'] / entries:.1f} |")
total = peak["heap"] + peak["extra"]
print(f"| **total** | {total:,} | {total / entries:.1f} |")
EOF
