# Helpers shared by the scripts (test.sh, bench.sh, memory-profile.sh). Sourced, not run: a
# caller of start_zookeeper defines PIDS (an array of processes its cleanup kills) first.

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
