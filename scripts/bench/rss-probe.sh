#!/usr/bin/env bash
# The server's memory through one fresh life, with the image's command line: at rest, after a first
# small upload (the upload worker starts), and the peak (VmHWM, reset before each) during a 1 GiB GET
# and a 1 GiB PUT. `make bench` measures one long-lived process across many rows; this shows what a
# single transfer costs a fresh one.
#   scripts/bench/rss-probe.sh                    # the Node on PATH
#   RSS_PROBE_NODE=/path/to/node scripts/bench/rss-probe.sh
#   RSS_PROBE_SOURCE_MAPS=1 scripts/bench/rss-probe.sh   # with --enable-source-maps
# Needs root (clear_refs of another process); loopback only; removes its files at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
node_bin="${RSS_PROBE_NODE:-node}"
[[ -s server/dist/server.mjs && -s server/dist/upload-worker.mjs ]] || { echo "rss-probe: run make build first" >&2; exit 1; }
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
head -c $((1 << 30)) /dev/urandom > "$work/big.bin"
head -c 4096 /dev/urandom > "$work/small.bin"
HOST=127.0.0.1 PORT="$port" ARTIFACTS_ROOT="$work/root" AUTH_MODE=none LOG_LEVEL=warn \
  "$node_bin" --max-semi-space-size=4 ${RSS_PROBE_SOURCE_MAPS:+--enable-source-maps} server/dist/server.mjs >"$work/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port/v1/namespaces/probe/artifacts"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
mb() { awk -v key="$1:" '$1 == key { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
reset_peak() { echo 5 > "/proc/$pid/clear_refs"; }
ok() { [[ $1 == 20[01] ]] || { echo "rss-probe: $2 answered $1" >&2; exit 1; }; }
sleep 1 # start-up garbage settles
idle=$(mb VmRSS)
ok "$(curl -s -o /dev/null -w '%{http_code}' -T "$work/small.bin" "$base/small")" "small PUT"
worker=$(mb VmRSS)
ok "$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -T "$work/big.bin" "$base/big")" "seeding PUT"
sync -f "$work"
reset_peak
ok "$(curl -s -o /dev/null -w '%{http_code}' "$base/big")" "GET"
get=$(mb VmHWM)
reset_peak
ok "$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' -T "$work/big.bin" "$base/big2")" "PUT"
put=$(mb VmHWM)
echo "node $("$node_bin" --version): at rest ${idle} MB, after a first upload ${worker} MB, 1 GiB GET peak ${get} MB, 1 GiB PUT peak ${put} MB (PUT peak reset from ${get} MB or less)"
