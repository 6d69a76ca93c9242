#!/usr/bin/env bash
# HTTP load on the public side with a big store: 1,000 components (config) and 10,000
# incidents (opened through the operator API, every 10th published with an update, half of
# them resolved), then `wrk` against `/` (the status page) and `/api/v2/summary.json`.
# Prints requests/s and the p50/p99 latency of each. The collector (release build) and wrk
# share this machine's cores.
# Goal (issue 5): >= 5,000 req/s and p99 <= 20 ms on 2 cores.
# Usage: collector/benches/http-load.sh [SECONDS] [CONNECTIONS] [INCIDENTS] [COMPONENTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-15}"
connections="${2:-50}"
incidents="${3:-10000}"
components="${4:-1000}"
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vakt/target}"
cargo build --release --quiet -p collector --bin vakt-collector
bin="$CARGO_TARGET_DIR/release/vakt-collector"
work="$(mktemp -d)"
cleanup() { kill "${up_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtt="$(free_port)"; http="$(free_port)"

python3 - "$components" > "$work/collector.toml" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f'[[component]]\nname = "c{i}"\ntitle = "Service {i}"\ngroup = "Group {i % 20}"\nagents = "agent-{i}"\n')
PY
"$bin" check-config "$work/collector.toml" >/dev/null
"$bin" up --no-agent --config "$work/collector.toml" --data-dir "$work/data" \
  --http-listen "127.0.0.1:$http" --mqtt-listen "127.0.0.1:$mqtt" > "$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.1; done

echo "loader-password-long" | "$bin" user add loader --role technician --password-stdin --data-dir "$work/data" >/dev/null
token="$("$bin" token create --user loader --name load --scopes read,triage --expires 1d --data-dir "$work/data" | awk '{print $NF}')"

start=$(date +%s.%N)
python3 - "$http" "$token" "$incidents" "$components" <<'PY'
import http.client, json, sys
port, token, n, comps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"authorization": f"Bearer {token}", "content-type": "application/json"}
def post(path, body):
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse(); data = r.read()
    if r.status >= 300:
        sys.exit(f"{path}: {r.status} {data!r}")
    return json.loads(data)
for i in range(n):
    made = post("/api/v1/incidents", {"title": f"Load incident {i}", "severity": ("major", "minor")[i % 2],
                                      "components": [f"c{i % comps}"]})
    iid = made["id"]
    if i % 10 == 0:
        post(f"/api/v1/incidents/{iid}/updates", {"status": "investigating", "text": f"Looking into incident {i}."})
    if i % 2 == 0:
        post(f"/api/v1/incidents/{iid}/resolve", {})
PY
end=$(date +%s.%N)
echo "seeded $incidents incidents over $components components in $(python3 -c "print(round($end-$start,1))") s (through /api/v1, each change audited)"
sleep 2

for path in / /api/v2/summary.json; do
  out="$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$http$path")"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  bytes="$(curl -s "http://127.0.0.1:$http$path" | wc -c)"
  errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)"
  printf '%-22s %10s req/s   p50 %-9s p99 %-9s  (%s bytes/response, %s connections, %s s) %s\n' \
    "$path" "$rps" "$p50" "$p99" "$bytes" "$connections" "$seconds" "$errors"
done
