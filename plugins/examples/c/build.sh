#!/usr/bin/env bash
# Build the C example plugin into a Vakt check component: c-load.wasm next to this script.
#
# Needs: clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32 (Debian packages),
# wit-bindgen-cli (`cargo install wit-bindgen-cli --no-default-features --features c`), and a
# vakt-agent binary (for `vakt-agent componentize`; set VAKT_AGENT or put it on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit="$here/../../../wit"
out="${1:-$here/c-load.wasm}"
agent="${VAKT_AGENT:-vakt-agent}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

wit-bindgen c "$wit" --world check --out-dir "$here/gen" >/dev/null
clang-14 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Wextra -Werror \
  -Wno-unused-parameter -o "$work/c-load.core.wasm" \
  "$here/load.c" "$here/gen/check.c" "$here/gen/check_component_type.o"
"$agent" componentize "$work/c-load.core.wasm" -o "$out"
echo "built $out"
