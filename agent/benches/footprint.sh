#!/usr/bin/env bash
# Footprint, side by side in one run: `vakt-agent run` with every standard check every 10 s,
# and Debian's prometheus-node-exporter scraped every 10 s, for DURATION seconds (default 120).
# Samples VmRSS every 5 s; reads CPU time (user+system) at the end. Prints medians and maxima.
#
#   agent/benches/footprint.sh
#   DURATION=600 agent/benches/footprint.sh
#
# Needs: prometheus-node-exporter, curl, openssl, python3 (Debian); makes a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-120}"
for tool in prometheus-node-exporter curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release -p agent --bin vakt-agent
agent="$target/release/vakt-agent"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
exporter_port="$(free_port)"; smtp_port="$(free_port)"; tls_port="$(free_port)"

# Targets for the network checks, all on loopback: node_exporter itself (tcp, http), a TLS
# server (tls-cert), an SMTP server (smtp); dns asks the host's resolver for localhost.
prometheus-node-exporter --web.listen-address="127.0.0.1:$exporter_port" >/dev/null 2>&1 &
pids+=($!); exporter_pid=$!
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 30 -subj /CN=localhost >/dev/null 2>&1
openssl s_server -quiet -accept "$tls_port" -cert "$work/cert.pem" -key "$work/key.pem" -www >/dev/null 2>&1 &
pids+=($!)
python3 - "$smtp_port" <<'PY' >/dev/null 2>&1 &
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 footprint ESMTP\r\n")
        for line in self.rfile:
            if line.upper().startswith(b"EHLO"): self.wfile.write(b"250-footprint\r\n250 STARTTLS\r\n")
            elif line.upper().startswith(b"QUIT"): self.wfile.write(b"221 bye\r\n"); return
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
sleep 1

cat > "$work/agent.toml" <<TOML
[agent]
cache_dir = "$work/cache"
[defaults]
interval = "10s"
timeout = "5s"
[probes]
ca_files = ["$work/cert.pem"]
[[check]]
name = "cpu"
plugin = "cpu"
[[check]]
name = "memory"
plugin = "memory"
[[check]]
name = "swap"
plugin = "swap"
[[check]]
name = "load"
plugin = "load"
[[check]]
name = "disk"
plugin = "disk"
[[check]]
name = "process"
plugin = "process"
config = { name = "prometheus-node", critical = "1:" }
[[check]]
name = "tcp"
plugin = "tcp"
grants = ["net=127.0.0.1:$exporter_port"]
config = { host = "127.0.0.1", port = $exporter_port }
[[check]]
name = "http"
plugin = "http"
grants = ["net=127.0.0.1:$exporter_port"]
config = { url = "http://127.0.0.1:$exporter_port/metrics", contains = "node_" }
[[check]]
name = "dns"
plugin = "dns"
grants = ["net=localhost:53"]
config = { name = "localhost" }
[[check]]
name = "tls-cert"
plugin = "tls-cert"
grants = ["net=localhost:$tls_port"]
config = { host = "localhost", port = $tls_port }
[[check]]
name = "file-age"
plugin = "file-age"
grants = ["fs=/var/log"]
config = { path = "/var/log", min-size = 0, warning = "30d", critical = "60d" }
[[check]]
name = "smtp"
plugin = "smtp"
grants = ["net=127.0.0.1:$smtp_port"]
config = { host = "127.0.0.1", port = $smtp_port }
TOML

# Compile the plugins before measuring, as an installed agent has them cached.
VAKT_LOG=warn timeout 20 "$agent" run --config "$work/agent.toml" >/dev/null 2>&1 || true
VAKT_LOG=warn "$agent" run --config "$work/agent.toml" >"$work/results.jsonl" 2>"$work/agent.log" &
pids+=($!); agent_pid=$!

( while sleep 10; do curl -s "http://127.0.0.1:$exporter_port/metrics" >/dev/null; done ) &
pids+=($!)

# VmRSS, and RssAnon: the private memory, without file pages (binary, libraries, compiled
# plugins) that the kernel shares and can reclaim.
rss() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} END {print r, a}' "/proc/$1/status"; }
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/tck}' "/proc/$1/stat"; }
start_agent_cpu="$(cpu_seconds "$agent_pid")"; start_exporter_cpu="$(cpu_seconds "$exporter_pid")"
: > "$work/rss"
end=$((SECONDS + DURATION))
while [ "$SECONDS" -lt "$end" ]; do
  echo "$(rss "$agent_pid") $(rss "$exporter_pid")" >> "$work/rss"
  sleep 5
done
end_agent_cpu="$(cpu_seconds "$agent_pid")"; end_exporter_cpu="$(cpu_seconds "$exporter_pid")"

python3 - "$work/rss" "$work/results.jsonl" "$DURATION" "$start_agent_cpu" "$end_agent_cpu" "$start_exporter_cpu" "$end_exporter_cpu" <<'PY'
import json, statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
results = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
duration = int(sys.argv[3])
a0, a1, e0, e1 = map(float, sys.argv[4:8])
agent = [r[0] / 1024 for r in rows]
agent_anon = [r[1] / 1024 for r in rows]
exporter = [r[2] / 1024 for r in rows]
exporter_anon = [r[3] / 1024 for r in rows]
checks = sorted({r["check"] for r in results})
bad = sorted({(r["check"], r["status"]) for r in results if r["status"] == "unknown"})
print(f"{duration} s, {len(rows)} RSS samples; {len(results)} results from {len(checks)} checks; unknown: {bad or 'none'}")
print(f"{'':24} {'RSS median':>12} {'RSS max':>10} {'anon median':>12} {'CPU s':>8}")
print(f"{'vakt-agent run':24} {statistics.median(agent):>9.1f} MiB {max(agent):>6.1f} MiB {statistics.median(agent_anon):>8.1f} MiB {a1 - a0:>8.2f}")
print(f"{'prometheus-node-exporter':24} {statistics.median(exporter):>9.1f} MiB {max(exporter):>6.1f} MiB {statistics.median(exporter_anon):>8.1f} MiB {e1 - e0:>8.2f}")
print(f"RSS ratio vakt/node_exporter (median): {statistics.median(agent) / statistics.median(exporter):.2f} (goal <= 1)")
PY
