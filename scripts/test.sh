#!/usr/bin/env bash
# Installs what the tests need (ZooKeeper and NGINX from Debian's packages; kubernetes-validate
# from PyPI for the manifests' test) when missing, then runs every test of the workspace: unit
# tests and the cluster tests in tests/, among them a 60 s seeded fault run with a history
# checker (tests/nemesis.rs; longer soaks: scripts/nemesis.sh).
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
[ ${#need[@]} -eq 0 ] || echo "installing missing packages: ${need[*]}"
apt_install "${need[@]}"
scripts/install-k8s-tools.sh

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests
  cargo test --workspace --doc -q
else
  cargo test --workspace --no-fail-fast "$@"
fi
