#!/usr/bin/env bash
# Interoperability tests of mcp-http-bridge with clients nobody on the project wrote:
#   ts           the official TypeScript SDK client (node --test scripts/interop/ts/)
#   py           the official Python SDK client (pytest scripts/interop/py/)
#   conformance  the official MCP conformance suite, server mode, against the bridge fronting
#                scripts/interop/conformance-server.mjs
# Usage: scripts/interop.sh [ts] [py] [conformance]     (default: all three)
# Env:   BRIDGE_BIN, FIXTURE_BIN   binaries under test (default: target/debug/ of this repo)
#        MODERN_FIXTURE_BIN        the 2026-07-28 child of the ts and py era tests (default: target/debug/modern-mcp-server)
#        INTEROP_SSE=0             skip the legacy HTTP+SSE (/sse) client tests
#        PYTHON                    interpreter for the venv (default: python3)
# Installs what it needs on first use (npm ci, a venv) and again only when the lock files change.
# Exits non-zero if any suite fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export interop="$here/interop"
root="$(cd "$here/.." && pwd)"
export BRIDGE_BIN="${BRIDGE_BIN:-$root/target/debug/mcp-http-bridge}"
export FIXTURE_BIN="${FIXTURE_BIN:-$root/target/debug/fake-mcp-server}"
export MODERN_FIXTURE_BIN="${MODERN_FIXTURE_BIN:-$root/target/debug/modern-mcp-server}"
export PYTHONDONTWRITEBYTECODE=1
SUITE_TIMEOUT=600 # seconds per suite

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(ts py conformance)

die() { echo "interop: $*" >&2; exit 2; }
for bin in "$BRIDGE_BIN" "$FIXTURE_BIN" "$MODERN_FIXTURE_BIN"; do
  [ -x "$bin" ] || die "no executable at $bin (build it with 'cargo build --bins --features fixtures', or set BRIDGE_BIN/FIXTURE_BIN/MODERN_FIXTURE_BIN)"
done
# The suites run from scripts/interop/, so relative paths must not stay relative.
BRIDGE_BIN="$(readlink -f "$BRIDGE_BIN")" FIXTURE_BIN="$(readlink -f "$FIXTURE_BIN")"
MODERN_FIXTURE_BIN="$(readlink -f "$MODERN_FIXTURE_BIN")"
command -v node >/dev/null || die "node (>= 20) not found"

# shellcheck source=interop/lib.sh
source "$interop/lib.sh"

run_ts() { (cd "$interop" && node --test --test-reporter=spec ts/); }
run_py() { (cd "$interop" && .venv/bin/python -m pytest py -rfE); }
run_conformance() { (cd "$interop" && node conformance.mjs); }

declare -A result
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
for suite in "${suites[@]}"; do
  case "$suite" in
    ts | conformance) install_node ;;
    py) install_python ;;
    *) die "unknown suite '$suite' (ts, py, conformance)" ;;
  esac
  echo
  echo "=============== interop: $suite ==============="
  timeout --kill-after=10 "$SUITE_TIMEOUT" bash -c "$(declare -f "run_$suite"); run_$suite" 2>&1 | tee "$logs/$suite.log"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 124 ] && echo "interop: $suite timed out after ${SUITE_TIMEOUT}s"
  result[$suite]=$status
done

echo
echo "=============== interop: summary ==============="
echo "bridge:  $BRIDGE_BIN"
echo "fixture: $FIXTURE_BIN"
echo "modern:  $MODERN_FIXTURE_BIN"
failed=0
for suite in "${suites[@]}"; do
  case "$suite" in
    ts) summary="$(grep -E '^ℹ (tests|pass|fail|cancelled|skipped) ' "$logs/ts.log" | sed 's/^ℹ //' | paste -sd, -)" ;;
    py) summary="$(grep -E '^=+ .*(passed|failed|error|skipped).* =+$' "$logs/py.log" | tail -1 | tr -d '=' | xargs)" ;;
    conformance) summary="$(grep -E '^Total: ' "$logs/conformance.log" | tail -1)" ;;
  esac
  if [ "${result[$suite]}" -eq 0 ]; then verdict=PASS; else verdict=FAIL; failed=1; fi
  printf '%-12s %s  %s\n' "$suite" "$verdict" "${summary:-(no summary)}"
done
exit "$failed"
