# Helpers shared by the scripts (test.sh, bench.sh, bench-resp.sh, profile-resp.sh, ...). Sourced, not run: a
# caller of start_zookeeper, start_redis or start_twemproxy defines PIDS (an array of processes its cleanup kills) first.

# apt_install <package...>: installs Debian packages, with sudo when not root.
apt_install() {
  [ $# -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # wait_for <seconds> <command...>
  local t=$1; shift
  for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*" >&2; return 1
}

# start_zookeeper <dir>: Debian's ZooKeeper, standalone on a free loopback port with its data in
# <dir>; sets ZKPORT and adds the process to PIDS; returns once it answers `srvr`.
start_zookeeper() {
  ZKPORT=$(free_port)
  mkdir -p "$1"
  java -Xmx256m -Dzookeeper.admin.enableServer=false -Dzookeeper.4lw.commands.whitelist=srvr,ruok \
    -cp /usr/share/java/zookeeper.jar:/etc/zookeeper/conf org.apache.zookeeper.server.ZooKeeperServerMain \
    "$ZKPORT" "$1" 2000 >"$1.log" 2>&1 &
  PIDS+=($!)
  wait_for 60 bash -c "echo srvr | timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$ZKPORT; cat >&3; cat <&3' | grep -q Mode"
}

# start_redis <dir> <port>: a throwaway Redis (no persistence) on loopback; adds it to PIDS,
# sets REDIS_PID, returns once it answers.
start_redis() {
  mkdir -p "$1/redis-$2"
  redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no --dir "$1/redis-$2" --daemonize no \
    >"$1/redis-$2.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for 10 redis-cli -p "$2" ping
}

# start_twemproxy <dir>: Debian's nutcracker (ketama, fnv1a_64) over three fresh Redis servers,
# the two-tier peer of tiercache. Sets TWEM_PORT and TWEM_PROCS ("name=pid" for nutcracker and
# each Redis); adds every process to PIDS; returns once a SET goes through it.
start_twemproxy() {
  local nutcracker p i
  nutcracker=$(command -v nutcracker || echo /usr/sbin/nutcracker)
  TWEM_PORT=$(free_port)
  printf 'pool:\n  listen: 127.0.0.1:%s\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  servers:\n' \
    "$TWEM_PORT" >"$1/nutcracker.yml"
  TWEM_PROCS=()
  for i in 1 2 3; do
    p=$(free_port)
    start_redis "$1" "$p"
    TWEM_PROCS+=("redis-$i=$REDIS_PID")
    echo "    - 127.0.0.1:$p:1" >>"$1/nutcracker.yml"
  done
  "$nutcracker" -c "$1/nutcracker.yml" >"$1/nutcracker.log" 2>&1 &
  PIDS+=($!)
  TWEM_PROCS=("nutcracker=$!" "${TWEM_PROCS[@]}")
  wait_for 10 redis-cli -p "$TWEM_PORT" set probe 1
}
