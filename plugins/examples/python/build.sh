#!/usr/bin/env bash
# Build the Python example plugin into a Vakt check component: py-health.wasm next to this
# script. Needs componentize-py (`pip install componentize-py==0.25.1`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/py-health.wasm}"
cd "$here"
componentize-py -d ../../../wit -w check componentize app -o "$out" >/dev/null
echo "built $out"
