#!/usr/bin/env bash
# Collector ingest next to the raw broker rate, in one run, through one Mosquitto:
#   1. raw: N simulated agents publish M results each; a subscriber counts and discards.
#   2. acked: the same load with `vakt-collector run` storing into SQLite and acking; the
#      simulated agents wait for the ack of their last result.
#   3. what an enrolled agent's seal costs per result, in the same run: the HMAC check the
#      collector makes before decoding (`protocol::seal::open`) and the agent's `seal`, next to
#      the collector's CPU per stored result from step 2.
# Prints both rates and their ratio. Usage: collector/benches/ingest.sh [AGENTS] [RESULTS_EACH]
set -euo pipefail
cd "$(dirname "$0")/../.."
agents="${1:-50}"
each="${2:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vakt/target}"
cargo build --release --quiet -p collector --bin vakt-collector --bench loadgen
loadgen="$(ls -t "$CARGO_TARGET_DIR"/release/deps/loadgen-* | grep -v '\.d$' | head -1)"
collector="$CARGO_TARGET_DIR/release/vakt-collector"

work="$(mktemp -d)"
cleanup() { kill "$broker_pid" "${collector_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
http="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 100\n' "$port" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
broker_pid=$!
sleep 0.5

echo "machine: $(nproc) cores; $agents agents x $each results, bincode, QoS 1, Mosquitto $(/usr/sbin/mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
raw="$("$loadgen" --mode raw --port "$port" --agents "$agents" --results "$each")"
echo "$raw"

printf '[mqtt]\nurl = "mqtt://127.0.0.1:%s"\n[store]\npath = "%s/vakt.db"\n[http]\nlisten = "127.0.0.1:%s"\n' "$port" "$work" "$http" > "$work/collector.toml"
VAKT_LOG=warn ${VAKT_PROFILE:+perf record -g -o /tmp/collector.perf} "$collector" run --config "$work/collector.toml" > "$work/collector.log" 2>&1 &
collector_pid=$!
if [ -n "${VAKT_PROFILE:-}" ]; then sleep 1; collector_pid="$(pgrep -n -f 'vakt-collector run')"; fi
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" > /dev/null && break; sleep 0.1; done
sleep 0.5
acked="$("$loadgen" --mode acked --port "$port" --agents "$agents" --results "$each")"
echo "$acked"
stored="$(curl -s "http://127.0.0.1:$http/metrics" | awk '/^vakt_ingest_results_stored_total/ {print $2}')"
echo "collector stored $stored results"
ticks="$(awk '{print $14 + $15}' "/proc/$collector_pid/stat")"
per="$(python3 -c "print(f'{$ticks*10000/$stored:.2f}')")"
echo "collector CPU: $(python3 -c "print(f'{$ticks/100:.2f}')") s for $stored results = $per us/result"
r="$(echo "$raw" | sed -n 's/.*= \([0-9]*\) msg\/s.*/\1/p')"
a="$(echo "$acked" | sed -n 's/.*= \([0-9]*\) results\/s.*/\1/p')"
python3 -c "print(f'ratio: stored-and-acked / raw broker = {$a/$r:.2f}')"

# The seal's cost on one typical result (divan medians), next to the collector's CPU per result.
cargo bench --quiet -p protocol --bench codec -- seal open 2>/dev/null | python3 -c '
import re, sys
per = float(sys.argv[1])
scale = {"ns": 0.001, "µs": 1.0, "us": 1.0, "ms": 1000.0}
group = None
for line in sys.stdin:
    cells = [c.strip() for c in line.split("│")]
    if cells and cells[0] == "":
        cells = cells[1:]
    if len(cells) < 3:
        continue
    head = re.match(r"[├╰]─ (\w+)(\s+\S)?", cells[0])
    if head and not head.group(2):
        group = head.group(1)
        continue
    if group and head:
        arg = head
        value, unit = cells[2].split()
        us = float(value) * scale[unit]
        print(f"seal {group:4} {arg.group(1):7}: {us:.2f} us/result = {us / per * 100:.1f}% of the collector CPU per stored result")
' "$per"
