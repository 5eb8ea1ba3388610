#!/usr/bin/env bash
# Builds the bridge, starts it on a free port in front of the example stdio MCP server that
# ships in this repository, and walks through a real session with curl:
# initialize → tools/list → tools/call → DELETE. Then stops the bridge with SIGTERM.
# Exits 0 when the call through the bridge returned the expected answer, non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bins --features fixtures
BIN=target/release

fifo=$(mktemp -u); mkfifo "$fifo"
hdr=$(mktemp)
"$BIN/mcp-http-bridge" --port 0 -- "$BIN/fake-mcp-server" >"$fifo" &
bridge=$!
# On every exit path. `|| true`: on success the bridge is already stopped, and a failing `kill`
# in this trap would otherwise turn that success into exit status 1 under `set -e`.
trap 'kill "$bridge" 2>/dev/null || true; rm -f "$fifo" "$hdr"' EXIT
read -r url <"$fifo"        # the bridge prints its endpoint URL as its first stdout line
echo "bridge listening at $url"

post() { curl -sS -D "$hdr" "$url" -H 'content-type: application/json' \
              -H 'accept: application/json, text/event-stream' "$@"; echo; }
echo; echo "--> initialize"
post -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
sid=$(awk 'tolower($1)=="mcp-session-id:" {print $2}' "$hdr" | tr -d '\r')
echo "session: $sid"
post -H "mcp-session-id: $sid" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
echo "--> tools/list (names)"
post -H "mcp-session-id: $sid" -H 'accept: application/json' \
  -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' | grep -o '"name":"[a-z_]*"' | tr '\n' ' '; echo
echo "--> tools/call add(2, 40)"
reply=$(post -H "mcp-session-id: $sid" -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}')
echo "$reply"
echo "--> DELETE session"
curl -sS -o /dev/null -w '%{http_code}\n' -X DELETE "$url" -H "mcp-session-id: $sid"
kill -TERM "$bridge"; wait "$bridge"
if grep -q '"text":"42"' <<<"$reply"; then echo "OK: the call through the bridge returned 42"; else echo "FAILED"; exit 1; fi
