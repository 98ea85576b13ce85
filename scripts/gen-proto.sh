#!/usr/bin/env bash
# Regenerates vessel/api/v1 from proto/. `--check` fails when the checked-in code is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python -m grpc_tools.protoc -Iproto --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" proto/vessel/api/v1/*.proto
if [[ "${1:-}" == "--check" ]]; then
  diff -r -q "$out/vessel/api/v1" vessel/api/v1 -x __init__.py -x __pycache__ \
    || { echo "generated gRPC code is stale: run scripts/gen-proto.sh" >&2; exit 1; }
else
  mkdir -p vessel/api/v1
  cp "$out"/vessel/api/v1/* vessel/api/v1/
fi
