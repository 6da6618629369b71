#!/usr/bin/env bash
# Runs the Locust load test (locustfile.py) against tiercache, by default through NGINX.
#
#   ./run_test.sh                                   # web UI on http://localhost:8089
#   ./run_test.sh --host http://localhost:8081 --users 200 --rate 20 --time 10m --headless
#
# Options (defaults):
#   --host URL        target                          (http://localhost:8081)
#   --users N         concurrent users                (100)
#   --rate N          users started per second        (10)
#   --time T          duration, e.g. 30s, 5m, 1h      (5m)
#   --headless        no web UI: run, print, exit     (off)
#   --csv PREFIX      CSV results prefix              (results/<UTC timestamp>)
#   -- ARGS...        passed to locust unchanged
# Results: PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv,
# PREFIX_exceptions.csv (and PREFIX.html with --headless). Exit code 1 if any request failed.
#
# Locust comes from the first of: $LOCUST, the virtualenv $TIERCACHE_VENV (default
# ~/.cache/tiercache/locust-venv, outside the repository), `python3 -m locust`; when none has
# it, that virtualenv is created from requirements.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

host=http://localhost:8081
users=100
rate=10
run_time=5m
headless=0
csv=""
extra=()

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "run_test.sh: $1 needs a value" >&2; exit 2; }; }

while [ $# -gt 0 ]; do
  case "$1" in
    --host) need_value "$@"; host=$2; shift 2 ;;
    --users | -u) need_value "$@"; users=$2; shift 2 ;;
    --rate | -r) need_value "$@"; rate=$2; shift 2 ;;
    --time | -t) need_value "$@"; run_time=$2; shift 2 ;;
    --headless) headless=1; shift ;;
    --csv) need_value "$@"; csv=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run_test.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

[[ "$users" =~ ^[0-9]+$ ]] || { echo "run_test.sh: --users wants a whole number" >&2; exit 2; }
[[ "$rate" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "run_test.sh: --rate wants a number" >&2; exit 2; }
[[ "$run_time" =~ ^([0-9]+[hms])+$ ]] || { echo "run_test.sh: --time wants e.g. 30s, 5m, 1h30m" >&2; exit 2; }

# Find or install Locust.
venv=${TIERCACHE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tiercache/locust-venv}
if [ -n "${LOCUST:-}" ]; then
  locust=("$LOCUST")
elif [ -x "$venv/bin/locust" ]; then
  locust=("$venv/bin/locust")
elif python3 -c 'import locust' >/dev/null 2>&1; then
  locust=(python3 -m locust)
else
  echo "== installing Locust into $venv (requirements.txt)" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r "$here/requirements.txt" >&2
  locust=("$venv/bin/locust")
fi

if [ -z "$csv" ]; then
  mkdir -p "$here/results"
  csv="$here/results/$(date -u +%Y%m%dT%H%M%SZ)"
else
  mkdir -p "$(dirname "$csv")"
fi

args=(-f "$here/locustfile.py" --host "$host" --users "$users" --spawn-rate "$rate"
  --run-time "$run_time" --csv "$csv" --csv-full-history)
if [ "$headless" -eq 1 ]; then
  args+=(--headless --only-summary --html "$csv.html")
else
  echo "== web UI: http://localhost:8089 (the test stops after $run_time)" >&2
  args+=(--autostart)
fi

echo "== locust -> $host: $users users, +$rate/s, $run_time; CSV: ${csv}_stats.csv" >&2
set +e
"${locust[@]}" "${args[@]}" ${extra[@]+"${extra[@]}"}
rc=$?
set -e
[ -f "${csv}_stats.csv" ] && echo "== results: ${csv}_stats.csv" >&2
exit "$rc"
