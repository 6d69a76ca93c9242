#!/usr/bin/env bash
# Agent death → host incident → page, measured against the agent's heartbeat interval.
# A real vakt-agent (release build) is SIGKILLed; the time from the kill to the host
# incident's page arriving at a local webhook is measured, ROUNDS times (default 5), with a
# heartbeat interval of HEARTBEAT seconds (default 5). Then, for comparison, the agent is
# frozen with SIGSTOP (its TCP connection stays up, only heartbeats stop), which is found by
# missing heartbeats (3 × the interval) or the broker's keep-alive, whichever is first.
# Goal (SIGKILL): <= 1.5 × the heartbeat interval.
# Usage: collector/benches/agent-death.sh [ROUNDS] [HEARTBEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
heartbeat="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vakt/target}"
cargo build --release --quiet -p collector --bin vakt-collector -p agent --bin vakt-agent
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
cleanup() { kill -9 "${up_pid:-}" "${agent_pid:-}" "${hook_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }
mqtt="$(free_port)"; http="$(free_port)"; hook="$(free_port)"

# The pager: records when each host incident's page arrives.
cat > "$work/hook.py" <<'PY'
import http.server, json, sys, time
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
        try:
            page = json.loads(body)
        except ValueError:
            return
        if page.get("event") == "page" and page["incident"].get("source") == "agent_down":
            with open(sys.argv[2], "a") as f:
                f.write(f"{page['incident']['agent']} {int(time.time() * 1000)}\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
touch "$work/pages"
python3 "$work/hook.py" "$hook" "$work/pages" &
hook_pid=$!

cat > "$work/policy.toml" <<TOML
[defaults]
escalation = "page"
[[person]]
name = "pager"
webhook = "http://127.0.0.1:$hook/page"
[[escalation]]
name = "page"
[[escalation.step]]
notify = ["person:pager"]
wait = "1h"
TOML
VAKT_LOG=warn "$bin/vakt-collector" up --no-agent --data-dir "$work/data" --config "$work/policy.toml" \
  --mqtt-listen "127.0.0.1:$mqtt" --http-listen "127.0.0.1:$http" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do [ -s "$work/data/mqtt-password" ] && curl -sf "http://127.0.0.1:$http/healthz" > /dev/null && break; sleep 0.1; done

online() {
  python3 - "$work/data/vakt.db" "$1" <<'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT online FROM agents WHERE agent = ?", (sys.argv[2],)).fetchone()
sys.exit(0 if row and row[0] == 1 else 1)
PY
}

run_round() { # $1 agent id, $2 signal
  local id="$1" signal="$2"
  cat > "$work/$id.toml" <<TOML
[agent]
id = "$id"
state_dir = "$work/$id"
[mqtt]
url = "mqtt://127.0.0.1:$mqtt"
username = "vakt-agent"
password_file = "$work/data/mqtt-password"
collector_key_file = "$work/data/collector.pub"
heartbeat = "${heartbeat}s"
[[check]]
name = "load"
plugin = "load"
interval = "${heartbeat}s"
timeout = "1s"
TOML
  VAKT_LOG=warn "$bin/vakt-agent" run --config "$work/$id.toml" > "$work/$id.log" 2>&1 &
  agent_pid=$!
  for _ in $(seq 300); do online "$id" && break; sleep 0.1; done
  sleep 2
  local killed; killed="$(now_ms)"
  kill "-$signal" "$agent_pid"
  local deadline=$(( $(date +%s) + 10 * heartbeat + 30 ))
  until grep -q "^$id " "$work/pages"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "no page for $id" >&2; return 1; }
    sleep 0.02
  done
  local paged; paged="$(grep "^$id " "$work/pages" | head -1 | cut -d' ' -f2)"
  kill -9 "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true
  echo $(( paged - killed ))
}

report() { # $1 label, rest: delays in ms
  local label="$1"; shift
  python3 - "$label" "$heartbeat" "$@" <<'PY'
import statistics, sys
label, hb, delays = sys.argv[1], float(sys.argv[2]), [int(d) for d in sys.argv[3:]]
median = statistics.median(delays)
print(f"{label}: kill -> page, ms: {' '.join(map(str, delays))}; median {median:.0f} ms "
      f"= {median / 1000 / hb:.3f} x the {hb:.0f} s heartbeat interval")
PY
}

kills=()
for r in $(seq "$rounds"); do kills+=("$(run_round "killed-$r" KILL)"); done
report "SIGKILL (connection closed, the broker publishes the Will)" "${kills[@]}"
frozen=()
for r in $(seq 3); do frozen+=("$(run_round "frozen-$r" STOP)"); done
report "SIGSTOP (connection stays open, heartbeats stop)" "${frozen[@]}"
echo "goal for SIGKILL: <= 1.5 x the heartbeat interval"
