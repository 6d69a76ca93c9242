#!/usr/bin/env bash
# Build the JavaScript example plugin into a Vakt check component: js-uptime.wasm next to this
# script (or the path given). Needs componentize-js from npm
# (`npm install @bytecodealliance/componentize-js@0.23.0`): on the PATH, in ./node_modules, or
# where .ci/run installs it ($VAKT_NPM, default ~/.cache/vakt/npm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/js-uptime.wasm}"
npm_dir="${VAKT_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/vakt/npm}"
tool=""
for candidate in "$(command -v componentize-js || true)" "$here/node_modules/.bin/componentize-js" \
                 "$npm_dir/node_modules/.bin/componentize-js"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then tool="$candidate"; break; fi
done
if [ -z "$tool" ]; then
  echo "componentize-js not found: npm install @bytecodealliance/componentize-js@0.23.0" >&2
  exit 1
fi
# No fetch: the plugin reaches the network only through the host's `net` interface (and the
# agent links no wasi:http), so StarlingMonkey's HTTP and fetch-event support stay out.
"$tool" --wit "$here/../../../wit" --world-name check --disable http fetch-event --out "$out" "$here/app.js" >/dev/null
echo "built $out"
