#!/usr/bin/env bash
# Checks the /metrics exposition with `promtool check metrics` (Debian package `prometheus`,
# installed with apt-get when missing). Starts the bridge (debug build, already built) with
# --metrics-listen on a free port in front of the example server, runs a short session with
# curl (initialize, tools/call, a refused Host), scrapes /metrics and lints it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug}

if ! command -v promtool >/dev/null; then
  echo "metrics: installing promtool (apt-get install prometheus)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

out=$(mktemp) err=$(mktemp) hdr=$(mktemp) scraped=$(mktemp)
"$BIN/mcp-http-bridge" --port 0 --metrics-listen 127.0.0.1:0 -- "$BIN/fake-mcp-server" >"$out" 2>"$err" &
bridge=$!
trap 'kill "$bridge" 2>/dev/null || true; rm -f "$out" "$err" "$hdr" "$scraped"' EXIT
# The URL line on stdout says the bridge is ready; the metrics address is in its log.
for _ in $(seq 200); do [ -s "$out" ] && break; kill -0 "$bridge" || break; sleep 0.05; done
url=$(head -1 "$out")
metrics=$(grep 'serving metrics' "$err" | grep -o 'addr=127.0.0.1:[0-9]*' | head -1 | cut -d= -f2)
[ -n "$url" ] && [ -n "$metrics" ] || { echo "metrics: the bridge did not start"; cat "$err"; exit 1; }

post() { curl -sS -D "$hdr" "$url" -H 'content-type: application/json' \
              -H 'accept: application/json, text/event-stream' "$@"; }
post -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' >/dev/null
sid=$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$hdr" | tr -d '\r')
post -H "mcp-session-id: $sid" -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}' >/dev/null
post -H 'host: evil.example' -d '{}' >/dev/null || true

curl -sS "http://$metrics/metrics" >"$scraped"
grep -q '^mcp_bridge_requests_total{server="default",method="tools/call",outcome="ok"} 1$' "$scraped" \
  || { echo "metrics: the tools/call was not counted"; cat "$scraped"; exit 1; }
promtool check metrics <"$scraped"
echo "metrics: promtool accepts the exposition ($(grep -vc '^#' "$scraped") samples)"
