#!/usr/bin/env bash
# A longer randomized fault run than the 60 s one in scripts/test.sh: the seeded schedule of
# tests/nemesis.rs (kill -9 + restart from a snapshot, SIGTERM + restart, freezes of an
# auxiliary short and past its ZooKeeper session, freezes of a master) for N minutes, with
# its history checked at the end (stale reads, lost acknowledged writes, counters, hangs).
#
#   scripts/nemesis.sh [--minutes N] [--seed S]    (defaults: 10 minutes, a random seed)
#
# The seed is printed first; the same seed replays the same schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
    --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nemesis.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*) echo "nemesis.sh: --minutes must be a whole number, got '$minutes'" >&2; exit 2 ;; esac
[ -n "$seed" ] || seed=$(( (RANDOM << 15) | RANDOM ))
case "$seed" in *[!0-9]*) echo "nemesis.sh: --seed must be a number, got '$seed'" >&2; exit 2 ;; esac
echo "nemesis: seed $seed, $minutes minutes (replay: scripts/nemesis.sh --minutes $minutes --seed $seed)"
. scripts/lib.sh
need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
apt_install "${need[@]}"
TIERCACHE_NEMESIS_SEED="$seed" TIERCACHE_NEMESIS_SECONDS=$((minutes * 60)) \
  cargo nextest run --test nemesis --no-capture a_seeded_fault_schedule
