#!/usr/bin/env bash
# Installs or checks what tests/manifests.rs needs to check deploy/kubernetes offline:
#   kubectl              renders the kustomizations (`kubectl kustomize`); must already be here
#   kubernetes-validate  (PyPI) validates them against the Kubernetes API schemas; with it comes
#                        PyYAML, which the test uses to turn the YAML into JSON
# Idempotent: does nothing when both are there. When PATH has no kubernetes-validate (with a
# python3 that imports yaml), it is installed into a virtualenv, by default
# ~/.cache/tiercache/k8s-venv (TIERCACHE_K8S_VENV), where the test looks first.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
venv=${TIERCACHE_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tiercache/k8s-venv}

die() { printf 'install-k8s-tools: %s\n' "$*" >&2; exit 1; }

command -v kubectl >/dev/null 2>&1 ||
  die "kubectl not found: install a recent kubectl (checked with 1.32, built-in kustomize v5) and put it on PATH."
kubectl kustomize --help >/dev/null 2>&1 || die "$(command -v kubectl) has no 'kustomize' subcommand; install a newer kubectl."

if command -v kubernetes-validate >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  exit 0
fi
if [ -x "$venv/bin/kubernetes-validate" ] && "$venv/bin/python3" -c 'import yaml' 2>/dev/null; then
  exit 0
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for kubernetes-validate)"
echo "== installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv" >&2
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
"$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
"$venv/bin/kubernetes-validate" --version >/dev/null
"$venv/bin/python3" -c 'import yaml'
