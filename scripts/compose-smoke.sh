#!/usr/bin/env bash
# Smoke test of the docker-compose stack, bounded in time, loud on failure, always cleaned up.
#
#   scripts/compose-smoke.sh
#
# 0. copies the working tree to a temporary directory and works there
# 1. scripts/build-images.sh (stand-in images from Debian packages; skips those that exist)
# 2. builds the tiercache image (CARGO_BUILD_JOBS=1 by default, low CPU priority)
# 3. `docker-compose up --build -d` (project tiercache-smoke), waits until every container is
#    healthy and prints how long that took
# 4. PUT + GET (query and raw-body forms, a %2F key) + DELETE through NGINX on :8081, and
#    redis-cli SET/GET and a short redis-benchmark through NGINX's RESP port (:6379);
#    /nodes through NGINX lists 3 masters and 3 auxiliaries, all up
# 5. Prometheus has all 6 tiercache targets up and every metric the dashboard uses
# 6. Grafana: when its image is present, it must come up with the data source and dashboard
#    provisioned; otherwise (it cannot be built from Debian packages) its provisioning files
#    are checked statically
# 7. a short headless Locust run through NGINX must have 0 failures
# 8. scaling: `--scale aux-extra=1` joins a 4th auxiliary (in /nodes and in Prometheus), data
#    stays readable, and scaling back to 0 removes it again
# 9. network cuts: aux-1 disconnected for 4 s, then for 15 s, under overwrites through NGINX,
#    and reconnected: every master shows it `up` within 10 s each time, and every acknowledged
#    write reads back its latest value
# 10. ZooKeeper member loss: the ensemble's leader is stopped; the cluster still serves (every
#    acknowledged write reads back), shows its configuration, and admits a restarted auxiliary
#    (aux-2, `up` again in every master's /nodes and ready); then the member comes back
# `docker-compose down -v` runs at exit, whatever happened.
#
# Environment: SMOKE_TIMEOUT (seconds for everything, default 1200), SMOKE_PROJECT
# (tiercache-smoke), SMOKE_LOCUST=0 / SMOKE_SCALE=0 / SMOKE_PARTITION=0 / SMOKE_ZK_LOSS=0 to skip
# steps 7 / 8 / 9 / 10, SMOKE_LOCUST_USERS (20),
# SMOKE_LOCUST_TIME (20s), CARGO_BUILD_JOBS (1), NGINX_PORT (8081), PROMETHEUS_PORT (9090),
# GRAFANA_PORT (4000).
set -euo pipefail
cd "$(dirname "$0")/.."

# The whole run under one deadline: re-run this script under `timeout`, which signals the
# whole process group; the EXIT trap below still tears the stack down.
if [ -z "${SMOKE_INNER:-}" ]; then
  export SMOKE_INNER=1
  limit=${SMOKE_TIMEOUT:-1200}
  set +e
  timeout --kill-after=120 "$limit" "$0" "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 124 ]; then
    echo "compose-smoke: FAILED: over the ${limit}s limit (SMOKE_TIMEOUT)" >&2
  fi
  exit "$rc"
fi

PROJECT=${SMOKE_PROJECT:-tiercache-smoke}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
# The image says which commit it runs (`tiercache --version`); compose passes the same.
export GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}
export NGINX_PORT=${NGINX_PORT:-8081} PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090} GRAFANA_PORT=${GRAFANA_PORT:-4000}
NGINX="http://127.0.0.1:$NGINX_PORT"
PROM="http://127.0.0.1:$PROMETHEUS_PORT"
GRAFANA="http://127.0.0.1:$GRAFANA_PORT"
DC=(docker-compose -p "$PROJECT" -f docker-compose.yml)
TMP=$(mktemp -d)
START=$(date +%s)

log() { printf '[%4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }

dump_logs() {
  echo "----- docker-compose ps -----" >&2
  "${DC[@]}" ps >&2 || true
  local ids id name state health
  ids=$("${DC[@]}" ps -q 2>/dev/null || true)
  for id in $ids; do
    name=$(docker inspect -f '{{.Name}}' "$id" 2>/dev/null | sed 's#^/##')
    state=$(docker inspect -f '{{.State.Status}}' "$id" 2>/dev/null || echo gone)
    health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo none)
    if [ "$state" != running ] || { [ "$health" != healthy ] && [ "$health" != none ]; } || [ "${DUMP_ALL:-0}" = 1 ]; then
      echo "----- $name: $state, health $health; last health check:" >&2
      docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}' "$id" 2>/dev/null | tail -n 5 >&2 || true
      echo "----- $name: last log lines" >&2
      docker logs --tail 60 "$id" 2>&1 | sed "s#^#$name | #" >&2 || true
    fi
  done
}

fail() {
  echo >&2
  echo "compose-smoke: FAILED: $*" >&2
  dump_logs
  FAILED_DUMPED=1
  exit 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ] && [ -z "${FAILED_DUMPED:-}" ]; then dump_logs || true; fi
  log "docker-compose down -v"
  "${DC[@]}" down -v --remove-orphans -t 10 >/dev/null 2>&1 || "${DC[@]}" down -v --remove-orphans -t 10 || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "compose-smoke: no Docker engine" >&2; exit 1; }
command -v docker-compose >/dev/null || { echo "compose-smoke: no docker-compose" >&2; exit 1; }
command -v curl >/dev/null || { echo "compose-smoke: needs curl" >&2; exit 1; }
if ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
  . "$(dirname "$0")/lib.sh"
  apt_install redis-tools
fi

# Work on a snapshot of the tree (tracked and untracked, not ignored, files): edits made while
# the test runs cannot change what is built or mounted halfway through.
SRC=$(pwd)
mkdir -p "$TMP/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$SRC" ls-files -z --cached --others --exclude-standard |
    tar -C "$SRC" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$TMP/src" -xf -
else
  tar -C "$SRC" --exclude=./target --exclude=./.git -cf - . | tar -C "$TMP/src" -xf -
fi
cd "$TMP/src"
[ -f Dockerfile ] && [ -f docker-compose.yml ] || fail "snapshot of $SRC has no Dockerfile/docker-compose.yml"
"${DC[@]}" config -q || fail "docker-compose.yml does not validate"

# Anything left over from an interrupted run.
"${DC[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true

# ---- 1. images --------------------------------------------------------------------------------
log "images (scripts/build-images.sh)"
nice -n 19 scripts/build-images.sh

services=()
for s in $("${DC[@]}" config --services); do
  case "$s" in
    aux-extra) ;; # scale 0; started in step 7
    grafana)
      img=$("${DC[@]}" config | sed -n '/^  grafana:/,/^  [a-z]/s/^    image: *//p' | head -n1)
      if docker image inspect "$img" >/dev/null 2>&1; then services+=("$s"); else
        log "no $img image here (not buildable from Debian packages): Grafana checked statically"
      fi
      ;;
    *) services+=("$s") ;;
  esac
done
with_grafana=0
[[ " ${services[*]} " == *" grafana "* ]] && with_grafana=1

# ---- 2. the tiercache image: the first build compiles the workspace (minutes) ------------------
# Built with `docker build` first so it can run at low CPU priority (compose cannot pass
# --cpu-shares); `up --build` below then finds every layer cached.
tiercache_image=$("${DC[@]}" config | sed -n 's/^    image: *\(tiercache:.*\)$/\1/p' | head -n1)
log "building $tiercache_image (CARGO_BUILD_JOBS=$CARGO_BUILD_JOBS)"
t=$(date +%s)
DOCKER_BUILDKIT=0 nice -n 19 docker build --force-rm --cpu-shares 256 \
  --build-arg CARGO_BUILD_JOBS="$CARGO_BUILD_JOBS" --build-arg GIT_COMMIT="$GIT_COMMIT" \
  -t "$tiercache_image" . >"$TMP/build.log" 2>&1 ||
  { tail -n 60 "$TMP/build.log" >&2; fail "docker build of $tiercache_image"; }
log "image built in $(($(date +%s) - t))s ($(docker image inspect -f '{{.Size}}' "$tiercache_image" | awk '{printf "%.0f MB", $1/1e6}'))"

# ---- 3. up, and wait until every container is healthy -------------------------------------
log "docker-compose up --build -d ${services[*]}"
t_up=$(date +%s)
nice -n 19 "${DC[@]}" up --build -d "${services[@]}" >"$TMP/up.log" 2>&1 ||
  { cat "$TMP/up.log" >&2; fail "docker-compose up"; }

wait_healthy() { # $1 = seconds
  local deadline=$(($(date +%s) + $1)) ids id h pending
  while :; do
    pending=""
    ids=$("${DC[@]}" ps -q)
    [ -n "$ids" ] || fail "no containers"
    for id in $ids; do
      h=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
      case "$h" in
        running/healthy | running/none) ;;
        exited/* | dead/*) fail "container $(docker inspect -f '{{.Name}}' "$id") is $h" ;;
        *) pending="$pending $(docker inspect -f '{{.Name}}' "$id" | sed 's#^/##')($h)" ;;
      esac
    done
    [ -z "$pending" ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after $1 s:$pending"
    sleep 1
  done
}
wait_healthy 180
UP_SECS=$(($(date +%s) - t_up))
log "all ${#services[@]} services healthy ${UP_SECS}s after 'up' (image already built)"

# ---- 4. the API through NGINX -------------------------------------------------------------
check() { # $1 = description, rest = command; prints the command's stdout into $OUT
  if ! OUT=$("${@:2}" 2>"$TMP/err"); then
    fail "$1: $(cat "$TMP/err") $OUT"
  fi
}
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }

check "PUT query form" code -X PUT "$NGINX/cache/?key=smoke:1&value=hello%20world&ttl=600"
[ "$OUT" = 200 ] || fail "PUT query form answered $OUT: $(cat "$TMP/body")"
check "GET query form" code "$NGINX/cache/?key=smoke:1"
[ "$OUT" = 200 ] && [ "$(cat "$TMP/body")" = "hello world" ] || fail "GET answered $OUT: $(cat "$TMP/body")"

head -c 65536 /dev/urandom >"$TMP/blob"
check "PUT raw body, %2F key" code -X PUT --data-binary @"$TMP/blob" -H 'Content-Type: application/octet-stream' "$NGINX/cache/smoke%2Fblob"
[ "$OUT" = 200 ] || fail "PUT raw body answered $OUT: $(cat "$TMP/body")"
check "GET by query key with /" code "$NGINX/cache/?key=smoke%2Fblob"
[ "$OUT" = 200 ] && cmp -s "$TMP/body" "$TMP/blob" || fail "64 KiB binary value did not round-trip through NGINX ($OUT)"

check "DELETE" code -X DELETE "$NGINX/cache/smoke:1"
[ "$OUT" = 200 ] || fail "DELETE answered $OUT"
check "GET deleted" code "$NGINX/cache/?key=smoke:1"
[ "$OUT" = 404 ] || fail "GET of a deleted key answered $OUT"
check "oversized value" code -X PUT --data-binary @<(head -c 1100000 /dev/zero) "$NGINX/cache/smoke:big"
[ "$OUT" = 413 ] || fail "a 1.1 MB value answered $OUT, wanted 413"
log "PUT/GET/DELETE through NGINX ok (binary 64 KiB value with a %2F key, 413 above 1 MiB)"

# RESP through NGINX's stream balancer: the same keyspace as HTTP.
REDIS_PUBLISH_PORT=${REDIS_PUBLISH_PORT:-6379}
rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PUBLISH_PORT" "$@"; }
[ "$(rcli SET smoke:resp hello)" = OK ] || fail "redis-cli SET through NGINX"
[ "$(rcli GET smoke:resp)" = hello ] || fail "redis-cli GET through NGINX"
check "GET over HTTP of a key set over RESP" code "$NGINX/cache/smoke:resp"
[ "$OUT" = 200 ] && [ "$(cat "$TMP/body")" = hello ] || fail "RESP and HTTP do not share the keyspace ($OUT)"
timeout 60 redis-benchmark -h 127.0.0.1 -p "$REDIS_PUBLISH_PORT" -t set,get -n 2000 -c 10 -q >"$TMP/rb" 2>&1 ||
  { cat "$TMP/rb" >&2; fail "redis-benchmark through NGINX"; }
grep -q "GET:" "$TMP/rb" || { cat "$TMP/rb" >&2; fail "redis-benchmark printed no GET line"; }
log "RESP through NGINX ok: redis-cli SET/GET, $(tr '\r' '\n' <"$TMP/rb" | grep -E '^(SET|GET):' | tr '\n' ' ')"

# retry_until <seconds> <what> <file> <command...>: runs the command every second until it
# succeeds; past the deadline, fails with <what> and the file's content (the last answer).
retry_until() {
  local deadline=$(($(date +%s) + $1)) what=$2 file=$3
  shift 3
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: $(cat "$file" 2>/dev/null)"
    sleep 1
  done
}

nodes_ok() { # $1 = auxiliaries wanted
  curl -fsS "$NGINX/nodes" >"$TMP/nodes" 2>/dev/null || return 1
  python3 - "$1" "$TMP/nodes" <<'EOF'
import json, sys
want = int(sys.argv[1])
n = json.load(open(sys.argv[2]))
aux = n.get("auxiliaries", [])
up = [a for a in aux if a.get("status") == "up"]
sys.exit(0 if len(aux) == want and len(up) == want and len(n.get("masters", [])) == 3 else 1)
EOF
}
retry_until 30 "/nodes through NGINX: wanted 3 masters and 3 auxiliaries up" "$TMP/nodes" nodes_ok 3
log "/nodes through NGINX: 3 masters, 3 auxiliaries up"

# ---- 5. Prometheus ------------------------------------------------------------------------
targets_up() { # $1 = tiercache targets wanted up; their states go to $TMP/targets.txt
  curl -fsS "$PROM/api/v1/targets?state=active" >"$TMP/targets" 2>/dev/null || return 1
  python3 - "$1" "$TMP/targets" >"$TMP/targets.txt" <<'EOF'
import json, sys
want = int(sys.argv[1])
t = json.load(open(sys.argv[2]))["data"]["activeTargets"]
mine = [x for x in t if x["labels"].get("job", "").startswith("tiercache-")]
up = [x for x in mine if x["health"] == "up"]
print(" ".join(sorted(x["labels"].get("node", "?") + ":" + x["health"] for x in mine)))
sys.exit(0 if len(mine) == want and len(up) == want else 1)
EOF
}
retry_until 60 "Prometheus: wanted 6 tiercache targets up, got" "$TMP/targets.txt" targets_up 6
log "Prometheus: 6 tiercache targets up ($(cat "$TMP/targets.txt"))"
"${DC[@]}" exec -T prometheus promtool check config /etc/prometheus/prometheus.yml >"$TMP/promtool" 2>&1 ||
  { cat "$TMP/promtool" >&2; fail "promtool check config"; }

# Every metric name the dashboard queries must exist in Prometheus.
curl -fsS "$PROM/api/v1/label/__name__/values" >"$TMP/names" || fail "Prometheus label values"
python3 - config/grafana/dashboards/tiercache.json "$TMP/names" <<'EOF' || fail "dashboard queries metrics Prometheus does not have"
import json, re, sys
dash = json.load(open(sys.argv[1]))
have = set(json.load(open(sys.argv[2]))["data"])
used = set()
for p in dash["panels"]:
    for t in p.get("targets", []):
        for name in re.findall(r"\b([a-z_]+(?:_total|_current|_seconds|_bucket|_sum|_count|_nodes|_connected)|up)\b", t["expr"]):
            used.add(name)
missing = sorted(used - have)
print("dashboard metrics:", len(used), "missing:", missing or "none")
sys.exit(1 if missing else 0)
EOF

# ---- 6. Grafana ---------------------------------------------------------------------------
python3 - <<'EOF' || fail "Grafana provisioning files"
import json, sys
try:
    import yaml
except ImportError:
    yaml = None
ds_file = "config/grafana/provisioning/datasources/prometheus.yml"
prov_file = "config/grafana/provisioning/dashboards/tiercache.yml"
dash = json.load(open("config/grafana/dashboards/tiercache.json"))
errors = []
if yaml:
    ds = yaml.safe_load(open(ds_file))["datasources"]
    uids = {d["uid"] for d in ds if d["type"] == "prometheus"}
    prov = yaml.safe_load(open(prov_file))["providers"]
    if not any(p["options"]["path"] == "/etc/grafana/dashboards" for p in prov):
        errors.append("no dashboard provider reads /etc/grafana/dashboards")
else:
    uids = {"prometheus"}
required = ["Request rate by operation", "Hit ratio", "Latency p50 / p99 by operation",
            "Keys per auxiliary", "Bytes per auxiliary", "Evictions", "Expirations",
            "Auxiliaries up", "Rebalance progress", "Backup age"]
titles = {p["title"] for p in dash["panels"]}
errors += [f"missing panel {t!r}" for t in required if t not in titles]
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    errors.append("duplicate panel ids")
for p in dash["panels"]:
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") not in uids:
        errors.append(f"panel {p['title']!r} uses an unknown data source")
    if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
        errors.append(f"panel {p['title']!r} has no query")
    g = p["gridPos"]
    if g["x"] + g["w"] > 24:
        errors.append(f"panel {p['title']!r} is wider than the grid")
if dash.get("uid") != "tiercache-overview":
    errors.append("dashboard uid changed")
print("grafana files:", "ok" if not errors else errors, f"({len(titles)} panels)")
sys.exit(1 if errors else 0)
EOF
if [ "$with_grafana" -eq 1 ]; then
  curl -fsS -u admin:"${GRAFANA_ADMIN_PASSWORD:-admin}" "$GRAFANA/api/datasources/uid/prometheus" >/dev/null ||
    fail "Grafana: data source not provisioned"
  curl -fsS -u admin:"${GRAFANA_ADMIN_PASSWORD:-admin}" "$GRAFANA/api/dashboards/uid/tiercache-overview" >/dev/null ||
    fail "Grafana: dashboard not provisioned"
  log "Grafana: data source and dashboard provisioned"
else
  log "Grafana: provisioning files valid (static check; no image to run)"
fi

# ---- 7. Locust ----------------------------------------------------------------------------
if [ "${SMOKE_LOCUST:-1}" = 1 ]; then
  users=${SMOKE_LOCUST_USERS:-20}
  duration=${SMOKE_LOCUST_TIME:-20s}
  log "Locust: $users users for $duration through NGINX"
  load_test/run_test.sh --host "$NGINX" --users "$users" --rate "$users" --time "$duration" --headless \
    --csv "$TMP/locust" >"$TMP/locust.out" 2>&1 || { cat "$TMP/locust.out" >&2; fail "Locust run had failures"; }
  python3 - "$TMP/locust_stats.csv" <<'EOF' || fail "Locust figures"
import csv, sys
rows = {r["Name"]: r for r in csv.DictReader(open(sys.argv[1]))}
a = rows["Aggregated"]
n, f = int(a["Request Count"]), int(a["Failure Count"])
print(f"locust: {n} requests, {f} failures, {float(a['Requests/s']):.0f} req/s, "
      f"p50 {a['50%']} ms, p99 {a['99%']} ms")
sys.exit(0 if n > 0 and f == 0 else 1)
EOF
  grep -h "hit ratio" "$TMP/locust.out" >&2 || true
fi

# ---- 8. one more auxiliary with --scale ------------------------------------------------------
if [ "${SMOKE_SCALE:-1}" = 1 ]; then
  log "docker-compose up -d --scale aux-extra=1"
  "${DC[@]}" up -d --no-recreate --scale aux-extra=1 aux-extra >"$TMP/scale.log" 2>&1 ||
    { cat "$TMP/scale.log" >&2; fail "scale up"; }
  wait_healthy 90
  retry_until 45 "/nodes: the scaled auxiliary did not join" "$TMP/nodes" nodes_ok 4
  retry_until 60 "Prometheus did not find the scaled auxiliary" "$TMP/targets.txt" targets_up 7
  check "GET after join" code "$NGINX/cache/?key=smoke%2Fblob"
  [ "$OUT" = 200 ] && cmp -s "$TMP/body" "$TMP/blob" || fail "value lost after an auxiliary joined ($OUT)"
  log "scaled: 4 auxiliaries in /nodes and in Prometheus; data still readable"
  "${DC[@]}" up -d --no-recreate --scale aux-extra=0 aux-extra >"$TMP/scale.log" 2>&1 ||
    { cat "$TMP/scale.log" >&2; fail "scale down"; }
  retry_until 60 "/nodes: the removed auxiliary is still listed" "$TMP/nodes" nodes_ok 3
  check "GET after leave" code "$NGINX/cache/?key=smoke%2Fblob"
  [ "$OUT" = 200 ] && cmp -s "$TMP/body" "$TMP/blob" || fail "value lost after an auxiliary left ($OUT)"
  log "scaled back to 3 auxiliaries; data still readable"
fi

# ---- 9. a network cut that heals ------------------------------------------------------------
if [ "${SMOKE_PARTITION:-1}" = 1 ]; then
  aux=$("${DC[@]}" ps -q aux-1)
  net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$aux")
  [ -n "$aux" ] && [ -n "$net" ] || fail "partition: no aux-1 container or network"
  # One writer overwriting 200 keys with an increasing counter; it records the last value
  # acknowledged per key. Bounded: it stops by itself after 60 s.
  python3 - "$NGINX" 60 "$TMP/acked.json" >"$TMP/writer.log" 2>&1 <<'EOF' &
import json, sys, time, urllib.request
base, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
acked, sent, failed, n, end = {}, 0, 0, 0, time.time() + secs
while time.time() < end:
    n += 1
    k = n % 200
    req = urllib.request.Request(f"{base}/cache/cut-{k}", data=str(n).encode(), method="PUT")
    sent += 1
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            if r.status == 200:
                acked[k] = n
    except Exception:
        failed += 1
json.dump({"acked": acked, "sent": sent, "failed": failed}, open(out, "w"))
EOF
  writer=$!
  # all_up: every master (NGINX balances them: five answers in a row) shows three auxiliaries up.
  all_up() { for _ in 1 2 3 4 5; do nodes_ok 3 || return 1; done; }
  # 4 s is shorter than the ZooKeeper session (the node stays in the placement, the masters'
  # pooled connections to it go half-open); 15 s is longer (it leaves and joins again).
  for cut in 4 15; do
    sleep 5
    log "partition: docker network disconnect $net aux-1 for $cut s under writes"
    docker network disconnect "$net" "$aux" || fail "docker network disconnect"
    sleep "$cut"
    docker network connect --alias aux-1 "$net" "$aux" || fail "docker network connect"
    t_back=$(date +%s%N)
    retry_until 10 "partition: aux-1 not up in every master's /nodes within 10 s of its network returning ($cut s cut)" "$TMP/nodes" all_up
    log "partition: aux-1 up in /nodes $((($(date +%s%N) - t_back) / 1000000)) ms after its network returned ($cut s cut)"
  done
  wait "$writer" || { cat "$TMP/writer.log" >&2; fail "partition writer"; }
  python3 - "$NGINX" "$TMP/acked.json" <<'EOF' || fail "partition: acknowledged writes lost or stale"
import json, sys, urllib.request
base, w = sys.argv[1], json.load(open(sys.argv[2]))
bad = []
for k, n in w["acked"].items():
    try:
        got = int(urllib.request.urlopen(f"{base}/cache/cut-{k}", timeout=5).read())
    except Exception as e:
        got = repr(e)
    # A later write that failed may still have landed: never older than the last acknowledged.
    if not isinstance(got, int) or got < n:
        bad.append((k, n, got))
print(f"partition: {w['sent']} writes, {w['failed']} failed, {len(w['acked'])} keys checked, "
      f"{len(bad)} not at their latest acknowledged value {bad[:5]}")
sys.exit(1 if bad else 0)
EOF
fi

# ---- 10. a ZooKeeper member lost ----------------------------------------------------------
if [ "${SMOKE_ZK_LOSS:-1}" = 1 ]; then
  zk_mode() { "${DC[@]}" exec -T "$1" zkServer.sh status 2>/dev/null | sed -n 's/^Mode: //p'; }
  leader=""
  for z in zk-1 zk-2 zk-3; do [ "$(zk_mode "$z")" = leader ] && leader=$z; done
  [ -n "$leader" ] || fail "ZooKeeper: no member says it leads"
  log "ZooKeeper: stopping the leader, $leader"
  t_zk=$(date +%s%N)
  "${DC[@]}" stop -t 5 "$leader" >/dev/null 2>&1 || fail "docker-compose stop $leader"
  for i in $(seq 1 50); do
    check "PUT with $leader down" code -X PUT "$NGINX/cache/zk-loss-$i" --data-binary "v$i"
    [ "$OUT" = 200 ] || { sleep 0.2; check "PUT with $leader down (retry)" code -X PUT "$NGINX/cache/zk-loss-$i" --data-binary "v$i"; }
    [ "$OUT" = 200 ] || fail "PUT failed with one ZooKeeper member down ($OUT)"
  done
  for i in $(seq 1 50); do
    check "GET with $leader down" code "$NGINX/cache/zk-loss-$i"
    [ "$OUT" = 200 ] && [ "$(cat "$TMP/body")" = "v$i" ] || fail "zk-loss-$i lost with one ZooKeeper member down"
  done
  log "ZooKeeper: 50 writes and reads ok $((($(date +%s%N) - t_zk) / 1000000)) ms after $leader stopped"
  curl -fsS "$NGINX/config" >"$TMP/config" || fail "GET /config with $leader down"
  grep -q '"replicas"' "$TMP/config" || fail "GET /config: $(cat "$TMP/config")"
  t_aux=$(date +%s)
  "${DC[@]}" restart -t 30 aux-2 >/dev/null 2>&1 || fail "docker-compose restart aux-2"
  all_up() { for _ in 1 2 3 4 5; do nodes_ok 3 || return 1; done; }
  retry_until 60 "ZooKeeper: restarted aux-2 not up in /nodes with $leader down" "$TMP/nodes" all_up
  aux_ready() { "${DC[@]}" exec -T aux-2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3001; printf "GET /health?ready=1 HTTP/1.0\r\n\r\n" >&3; head -1 <&3' >"$TMP/ready" 2>&1 && grep -q " 200" "$TMP/ready"; }
  retry_until 60 "ZooKeeper: restarted aux-2 not ready with $leader down" "$TMP/ready" aux_ready
  log "ZooKeeper: aux-2 restarted and ready $(($(date +%s) - t_aux)) s later, with $leader down"
  for i in $(seq 1 50 | shuf -n 10); do
    check "GET after aux-2 restart" code "$NGINX/cache/zk-loss-$i"
    [ "$OUT" = 200 ] && [ "$(cat "$TMP/body")" = "v$i" ] || fail "zk-loss-$i lost after aux-2 restarted"
  done
  "${DC[@]}" start "$leader" >/dev/null 2>&1 || fail "docker-compose start $leader"
  member_back() { [ -n "$(zk_mode "$leader")" ]; }
  retry_until 60 "ZooKeeper: $leader did not rejoin" "$TMP/zk" member_back
  log "ZooKeeper: $leader back as a $(zk_mode "$leader")"
fi

log "PASSED (up to healthy: ${UP_SECS}s)"
