#!/usr/bin/env bash
# Sets up a fresh machine: a virtualenv with Vessel and its development tools, and, when
# running as root on Debian/Ubuntu, btrfs-progs for the btrfs backend (the `dir` backend
# is used without it).
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/.."
if [[ $(id -u) -eq 0 ]] && ! command -v mkfs.btrfs >/dev/null && command -v apt-get >/dev/null; then
  echo "installing btrfs-progs"
  (apt-get install -y -qq btrfs-progs >/dev/null 2>&1) \
    || (apt-get update -qq >/dev/null && apt-get install -y -qq btrfs-progs >/dev/null)
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
