#!/usr/bin/env bash
# Per-run cost of standard plugins on ARM, under qemu-user on this host: Cranelift next to
# Pulley on arm64 (same emulator, same binary, runs interleaved), and Pulley on armhf (no
# Cranelift backend there). Each figure is the median over ROUNDS processes of the median of
# `vakt-agent check PLUGIN --repeat REPEAT` (fresh instance and `run` per repeat, pooling, as
# the daemon runs a check); compiles are cached before timing. Exit codes of the checks
# (WARNING, CRITICAL) do not stop the benchmark.
#
#   agent/benches/arm.sh                       # release builds (~15 min cold per architecture)
#   PROFILE=dev ROUNDS=3 agent/benches/arm.sh  # the CI build, quicker to make
#
# Needs: qemu-user, gcc-aarch64-linux-gnu libc6-dev-arm64-cross, gcc-arm-linux-gnueabihf
# libc6-dev-armhf-cross (Debian), rustup targets aarch64-unknown-linux-gnu and
# armv7-unknown-linux-gnueabihf. Emulation is slow and its overhead differs between code
# shapes: the ratio says how the backends compare under the same emulator, not what either
# costs on real ARM hardware.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE="${PROFILE:-release}"
ROUNDS="${ROUNDS:-5}"
REPEAT="${REPEAT:-200}"
PLUGINS="${PLUGINS:-load memory disk}"
for tool in qemu-aarch64 qemu-arm aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-$(pwd)/target}"
dir="$PROFILE"; [ "$PROFILE" = dev ] && dir=debug
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

build() {
  echo "building the agent for $1 ($PROFILE) ..." >&2
  cargo build --quiet --locked -p agent --bin vakt-agent --profile "$PROFILE" --target "$1" --features pulley
}

# The median per run (us) of one process: `check PLUGIN --repeat REPEAT --backend BACKEND`.
one_run() {
  local qemu="$1" sysroot="$2" binary="$3" plugin="$4" backend="$5" args=()
  [ "$plugin" = disk ] && args=(--set path=/)
  local err
  err="$(VAKT_CACHE_DIR="$work/cache-$qemu" VAKT_LOG=error timeout 600 "$qemu" -L "$sysroot" "$binary" \
    check "$plugin" "${args[@]}" --repeat "$REPEAT" --backend "$backend" 2>&1 >/dev/null || true)"
  sed -n 's/.* median \([0-9.]*\) us,.*/\1/p' <<<"$err" | tail -n 1
}

median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x]; print(f"{statistics.median(v):.1f}" if v else "n/a")' "$@"; }

rows=()
measure() {
  local name="$1" triple="$2" qemu="$3" sysroot="$4"; shift 4
  local backends=("$@")
  build "$triple"
  local binary="$target/$triple/$dir/vakt-agent"
  for plugin in $PLUGINS; do
    for backend in "${backends[@]}"; do one_run "$qemu" "$sysroot" "$binary" "$plugin" "$backend" >/dev/null; done
    declare -A runs=()
    for _ in $(seq "$ROUNDS"); do
      for backend in "${backends[@]}"; do
        runs[$backend]+="$(one_run "$qemu" "$sysroot" "$binary" "$plugin" "$backend") "
      done
    done
    local line="$name $plugin"
    for backend in "${backends[@]}"; do
      # shellcheck disable=SC2086
      line+=" $backend=$(median ${runs[$backend]})"
    done
    rows+=("$line")
    echo "$line" >&2
    unset runs
  done
}

measure arm64 aarch64-unknown-linux-gnu qemu-aarch64 /usr/aarch64-linux-gnu cranelift pulley
measure armhf armv7-unknown-linux-gnueabihf qemu-arm /usr/arm-linux-gnueabihf pulley

echo
echo "per-run cost under qemu-user ($PROFILE build; median of $ROUNDS processes x $REPEAT runs; host: $(nproc) cores)"
printf '%-6s %-8s %14s %14s %10s\n' arch plugin "cranelift us" "pulley us" "pulley/cl"
for row in "${rows[@]}"; do
  read -r arch plugin rest <<<"$row"
  cl="n/a" pu="n/a"
  for kv in $rest; do
    case "$kv" in cranelift=*) cl="${kv#*=}" ;; pulley=*) pu="${kv#*=}" ;; esac
  done
  ratio="$(python3 -c 'import sys
try: print(f"{float(sys.argv[2])/float(sys.argv[1]):.2f}x")
except Exception: print("n/a")' "$cl" "$pu")"
  printf '%-6s %-8s %14s %14s %10s\n' "$arch" "$plugin" "$cl" "$pu" "$ratio"
done
