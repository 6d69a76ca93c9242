#!/usr/bin/env bash
# Per-check cost, side by side in one run: the load and disk checks through Vakt — in-process
# (what the agent daemon pays per scheduled run) and as a `vakt-agent check` process — against
# fork/exec of Debian's monitoring-plugins `check_load` and `check_disk`.
#
#   agent/benches/compare-nagios.sh            # N=500 runs of each
#   N=2000 agent/benches/compare-nagios.sh
#
# Needs: monitoring-plugins-basic, hyperfine (Debian), a release build (made if missing).
# Prints medians in microseconds and the ratios. Every in-process repetition reads fresh host
# facts, as a scheduled run does.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-500}"
plugins=/usr/lib/nagios/plugins
for tool in hyperfine "$plugins/check_load" "$plugins/check_disk" python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine monitoring-plugins-basic)" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release -p agent --bin vakt-agent
agent="$target/release/vakt-agent"
cache="$(mktemp -d)"
json="$(mktemp)"
trap 'rm -rf "$cache" "$json"' EXIT
export VAKT_CACHE_DIR="$cache"
"$agent" check load >/dev/null || true   # fill the compile cache: measure runs, not compiles
"$agent" check disk >/dev/null || true

# Median of an in-process --repeat run, in microseconds.
in_process() { "$agent" check "$@" --repeat "$N" 2>&1 >/dev/null | sed -n 's/.* median \([0-9.]*\) us.*/\1/p'; }
# Median wall time of N executions of a command (no shell in between), in microseconds.
process() {
  hyperfine -N --style none --warmup 20 --runs "$N" --ignore-failure --export-json "$json" -- "$*" >/dev/null 2>&1
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["results"][0]["median"]*1e6, 1))' "$json"
}

printf 'machine: %s, %s cores; %s runs each; medians per check run\n\n' "$(uname -m)" "$(nproc)" "$N"
printf '%-7s %16s %20s %22s %14s %14s\n' check "vakt in-process" "vakt-agent check" "monitoring-plugins" "ratio in-proc" "ratio process"
for check in load disk; do
  case "$check" in
    load) vakt_args=(load); nagios=("$plugins/check_load" -r -w 2,1.5,1.2 -c 4,3,2.5) ;;
    disk) vakt_args=(disk --set path=/ --set warning=80 --set critical=90); nagios=("$plugins/check_disk" -w 20% -c 10% -p /) ;;
  esac
  inproc="$(in_process "${vakt_args[@]}")"
  vakt_process="$(process "$agent" check "${vakt_args[@]}")"
  nagios_process="$(process "${nagios[@]}")"
  python3 - "$check" "$inproc" "$vakt_process" "$nagios_process" <<'PY'
import sys
check, inproc, vakt, nagios = sys.argv[1], *map(float, sys.argv[2:])
print(f"{check:<7} {inproc:>13.1f} us {vakt:>17.1f} us {nagios:>19.1f} us {nagios/inproc:>13.1f}x {nagios/vakt:>13.2f}x")
PY
done
printf '\nratio in-proc = fork/exec of the monitoring plugin / a check run inside the agent (goal >= 20x)\n'
printf 'ratio process = fork/exec of the monitoring plugin / fork/exec of vakt-agent check\n'
