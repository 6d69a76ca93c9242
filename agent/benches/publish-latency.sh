#!/usr/bin/env bash
# Publish latency of the real agent: from a check finishing to its result being committed in
# the collector's store (spool write with fsync, MQTT through the embedded broker, ingest,
# SQLite commit), for every result of a 60 s run with 4 checks every 250 ms.
# Prints p50, p90, p99 and max from the store's own timestamps (millisecond resolution).
# Usage: agent/benches/publish-latency.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vakt/target}"
cargo build --release --quiet -p collector --bin vakt-collector -p agent --bin vakt-agent
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
cleanup() { kill "${up_pid:-}" "${agent_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtt="$(free_port)"; http="$(free_port)"
VAKT_LOG=warn "$bin/vakt-collector" up --no-agent --data-dir "$work/data" --mqtt-listen "127.0.0.1:$mqtt" --http-listen "127.0.0.1:$http" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do [ -s "$work/data/mqtt-password" ] && curl -sf "http://127.0.0.1:$http/healthz" > /dev/null && break; sleep 0.1; done
cat > "$work/agent.toml" <<TOML
[agent]
id = "latency-01"
state_dir = "$work/agent"
[mqtt]
url = "mqtt://127.0.0.1:$mqtt"
username = "vakt-agent"
password_file = "$work/data/mqtt-password"
collector_key_file = "$work/data/collector.pub"
[spool]
fsync = "always"
[defaults]
interval = "250ms"
timeout = "250ms"
[[check]]
name = "load"
plugin = "load"
[[check]]
name = "memory"
plugin = "memory"
[[check]]
name = "swap"
plugin = "swap"
[[check]]
name = "disk-root"
plugin = "disk"
config = { path = "/" }
TOML
VAKT_LOG=warn "$bin/vakt-agent" run --config "$work/agent.toml" > "$work/agent.log" 2>&1 &
agent_pid=$!
sleep "$seconds"
kill -TERM "$agent_pid"; wait "$agent_pid" || true
sleep 1
python3 - "$work/data/vakt.db" <<'PY'
import sqlite3, sys
rows = [r[0] for r in sqlite3.connect(sys.argv[1]).execute(
    "SELECT received_ms - ts_ms FROM results WHERE agent = 'latency-01' ORDER BY 1")]
if not rows:
    sys.exit("no results stored")
pct = lambda p: rows[min(len(rows) - 1, int(len(rows) * p))]
print(f"{len(rows)} results; check finished -> committed in the collector: "
      f"p50 {pct(0.5)} ms, p90 {pct(0.9)} ms, p99 {pct(0.99)} ms, max {rows[-1]} ms")
PY
