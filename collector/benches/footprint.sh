#!/usr/bin/env bash
# The collector with and without the in-process agent of `up` (cargo feature `local-agent`),
# side by side: binary size as built and stripped, wasmtime/cranelift symbols, and idle VmRSS
# of `vakt-collector run` against a local Mosquitto 15 s after start (median of 3 starts).
#
#   collector/benches/footprint.sh
#
# Needs: mosquitto, curl, binutils (strip, nm). Makes two release builds.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in mosquitto curl strip nm; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000)); http=$((port + 1))
mosquitto -p "$port" >/dev/null 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$work"' EXIT

measure() {
  local name=$1 bin=$2 rss=()
  strip -o "$work/$name.stripped" "$bin"
  for i in 1 2 3; do
    mkdir -p "$work/$name-$i"
    printf '[mqtt]\nurl = "mqtt://127.0.0.1:%s"\nclient_id = "footprint-%s-%s"\n[store]\npath = "vakt.db"\n[http]\nlisten = "127.0.0.1:%s"\n' \
      "$port" "$name" "$i" "$http" > "$work/$name-$i/collector.toml"
    "$bin" run --config "$work/$name-$i/collector.toml" > "$work/$name-$i/log" 2>&1 &
    local pid=$!
    sleep 15
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/readyz")" = 200 ] || echo "$name: /readyz not 200" >&2
    rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  local median
  median=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n 2p)
  printf '%-22s size %6.1f MB  stripped %5.1f MB  wasmtime/cranelift symbols %6d  idle RSS %5.1f MB\n' \
    "$name" "$(($(stat -c %s "$bin") / 100000))e-1" "$(($(stat -c %s "$work/$name.stripped") / 100000))e-1" \
    "$(nm -C "$bin" 2>/dev/null | grep -c 'wasmtime\|cranelift' || true)" "$((median / 100))e-1"
}

cargo build --quiet --release -p collector --bin vakt-collector
cp "$target/release/vakt-collector" "$work/with"
cargo build --quiet --release -p collector --bin vakt-collector --no-default-features
cp "$target/release/vakt-collector" "$work/without"
measure "with local-agent" "$work/with"
measure "without" "$work/without"
