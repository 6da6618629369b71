#!/usr/bin/env bash
# Installs what the tests need (ZooKeeper and NGINX from Debian's packages; kubernetes-validate
# and redis-py from PyPI for the manifests' and the transactions' tests) when missing, then runs
# every test of the workspace: unit tests and the cluster tests in tests/, among them a 60 s
# seeded fault run with a history checker (tests/nemesis.rs; longer soaks: scripts/nemesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
# Network cuts between one master and one auxiliary (tests/common Cut) are iptables rules.
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
# redis-py 5 or later (PyPI), for tests/redis_py_transactions.py, which tests/transactions.rs
# runs: PATH's python3 when it has it, else a virtualenv, by default
# ~/.cache/tiercache/redis-py-venv (TIERCACHE_REDIS_PY_VENV), where the test looks first.
REDIS_PY_VERSION=8.2.0
redis_py_venv=${TIERCACHE_REDIS_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tiercache/redis-py-venv}
has_redis_py() { "$1" -c 'import sys, redis; sys.exit(int(redis.__version__.split(".")[0]) < 5)' >/dev/null 2>&1; }
need_redis_py=
has_redis_py python3 || has_redis_py "$redis_py_venv/bin/python3" || need_redis_py=1
# Debian's python3 makes virtualenvs only with python3-venv.
[ -z "$need_redis_py" ] || python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] || echo "installing missing packages: ${need[*]}"
apt_install "${need[@]}"
scripts/install-k8s-tools.sh
if [ -n "$need_redis_py" ]; then
  echo "== installing redis-py $REDIS_PY_VERSION into $redis_py_venv" >&2
  mkdir -p "$(dirname "$redis_py_venv")"
  python3 -m venv "$redis_py_venv"
  "$redis_py_venv/bin/pip" install -q --disable-pip-version-check "redis==$REDIS_PY_VERSION" >&2
  has_redis_py "$redis_py_venv/bin/python3" || { echo "redis-py did not install into $redis_py_venv" >&2; exit 1; }
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests
  cargo test --workspace --doc -q
else
  cargo test --workspace --no-fail-fast "$@"
fi
