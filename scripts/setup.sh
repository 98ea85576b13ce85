#!/usr/bin/env bash
# Sets up a fresh machine: a virtualenv holding exactly the versions in uv.lock (Vessel,
# its runtime and its development tools), and, when running as root on Debian/Ubuntu,
# the system tools the tests use: btrfs-progs for the btrfs backend (the `dir` backend is
# used without it), kubectl (Debian's kubernetes-client) for the kubectl tests and
# promtool (Debian's prometheus; its server is not started) to lint every service's metrics.
#
#   scripts/setup.sh [VENV [UV-LOCK-ARGS...]]
#
# With UV-LOCK-ARGS (e.g. `--upgrade`, `--upgrade-package grpcio`) the lock is re-resolved
# with them first: `make lock` uses this, and it works when the lock no longer matches.
set -euo pipefail
venv=${1:-.venv}
shift || true
cd "$(dirname "$0")/.."
missing=()
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v promtool >/dev/null || missing+=(prometheus)
if [[ $(id -u) -eq 0 && ${#missing[@]} -gt 0 ]] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1) \
    || (apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null)
fi
# uv installs the lock; its own version comes from the lock too, so nothing floats.
uv_version=$(sed -n '/^name = "uv"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock)
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "uv==$uv_version"
if [[ $# -gt 0 ]]; then
  "$venv/bin/uv" lock "$@"
fi
# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as in the image and many CI
# machines) every process would otherwise compile each module it imports, ~0.5 s of CPU
# per service start.
if ! UV_PROJECT_ENVIRONMENT="$venv" "$venv/bin/uv" sync -q --locked --extra dev --compile-bytecode; then
  echo "setup failed. If uv says the lock needs updating, pyproject.toml and uv.lock" \
    "disagree: run 'scripts/setup.sh $venv --upgrade-package NAME' for the package you" \
    "added or changed (or 'make lock' to upgrade everything), then commit uv.lock." >&2
  exit 1
fi
"$venv/bin/python" -m compileall -q -j 0 services vessel vessel_cli vessel_dev >/dev/null
