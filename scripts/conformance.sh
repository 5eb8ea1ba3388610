#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance 0.2.0-alpha.12,
# the npm alias `conformance-next` in scripts/interop/package.json) in server mode with a frozen
# requirement set against mcp-http-bridge fronting a stdio fixture:
#   legacy  node scripts/interop/conformance-server.mjs   (speaks 2024-11-05 … 2025-11-25)
#   modern  target/debug/modern-mcp-server                 (speaks only 2026-07-28)
# Usage: scripts/conformance.sh --requirements 2025-11-25|2026-07-28 --child legacy|modern
#                               [--scenario NAME] [-o DIR] [--details] [-- more suite args]
#   --scenario NAME  run only this scenario, at the revision's wire (--spec-version REV); the
#              suite then prints that scenario's checks instead of the per-scenario summary
#   -o DIR     keep the suite's per-scenario results (DIR/server-<scenario>-*/checks.json) and the
#              bridge's log (DIR/bridge.log) in DIR; without it they go to a temporary folder
#              that is removed when the run passes
#   --details  after the suite, list every failing check (scenario, id, message)
# Env: BRIDGE_BIN, MODERN_BIN  binaries under test (default: target/debug/ of this repo)
#      BRIDGE_ARGS             extra bridge flags, e.g. "--log-level debug"
# Prints the suite's own per-scenario lines and exits with the suite's status (2 when it could
# not run). Installs what it needs (npm ci into scripts/interop) when package-lock.json changed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
interop="$here/interop"
root="$(cd "$here/.." && pwd)"
BRIDGE_BIN="${BRIDGE_BIN:-$root/target/debug/mcp-http-bridge}"
MODERN_BIN="${MODERN_BIN:-$root/target/debug/modern-mcp-server}"
RUN_TIMEOUT=540 # seconds for the whole suite run
READY_TIMEOUT=20 # seconds for the bridge to print its URL

die() { echo "conformance: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

requirements='' child='' scenario='' out='' details=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --requirements) requirements="${2:-}"; shift 2 || usage ;;
    --child) child="${2:-}"; shift 2 || usage ;;
    --scenario) scenario="${2:-}"; shift 2 || usage ;;
    -o | --output-dir) out="${2:-}"; shift 2 || usage ;;
    --details) details=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage ;;
    *) echo "conformance: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$requirements" in 2025-11-25 | 2026-07-28) ;; *) usage ;; esac
case "$child" in
  legacy) command -v node >/dev/null || die "node (>= 20) not found"; child_cmd=(node "$interop/conformance-server.mjs") ;;
  modern) [ -x "$MODERN_BIN" ] || die "no executable at $MODERN_BIN (build it with 'cargo build --bins --features fixtures')"; child_cmd=("$(readlink -f "$MODERN_BIN")") ;;
  *) usage ;;
esac
[ -x "$BRIDGE_BIN" ] || die "no executable at $BRIDGE_BIN (build it with 'cargo build --bins --features fixtures', or set BRIDGE_BIN)"
command -v npm >/dev/null || die "npm not found"

# shellcheck source=interop/lib.sh
source "$interop/lib.sh"
install_node
node22="$interop/node_modules/node/bin/node"
cli="$interop/node_modules/conformance-next/dist/index.js"
[ -f "$cli" ] || die "the suite is not installed at $cli"

keep=1
if [ -z "$out" ]; then out="$(mktemp -d "${TMPDIR:-/tmp}/mcp-conformance-XXXXXX")"; keep=0; fi
mkdir -p "$out" || die "cannot create $out"
out="$(readlink -f "$out")"

# The bridge on a free port; its first stdout line is its URL.
: >"$out/bridge.stdout"
# shellcheck disable=SC2086 # BRIDGE_ARGS is a list of flags
"$BRIDGE_BIN" --port 0 ${BRIDGE_ARGS:-} -- "${child_cmd[@]}" >"$out/bridge.stdout" 2>"$out/bridge.log" &
bridge_pid=$!
stop_bridge() {
  kill -TERM "$bridge_pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$bridge_pid" 2>/dev/null
  wait "$bridge_pid" 2>/dev/null
}
trap stop_bridge EXIT
url=''
for _ in $(seq $((READY_TIMEOUT * 10))); do
  if [ "$(wc -l <"$out/bridge.stdout")" -ge 1 ]; then # a whole first line
    url="$(head -n1 "$out/bridge.stdout")"
    break
  fi
  kill -0 "$bridge_pid" 2>/dev/null || break
  sleep 0.1
done
if ! [[ "$url" =~ ^http://.+/mcp$ ]]; then
  tail -n 40 "$out/bridge.log" >&2
  die "the bridge did not print its URL (first stdout line: '${url}')"
fi

# The suite refuses --scenario with --requirements: one scenario runs at the revision's wire.
if [ -n "$scenario" ]; then
  selection=(--scenario "$scenario" --spec-version "$requirements")
else
  selection=(--requirements "$requirements")
fi
# Scenarios that cannot pass with this child, each with its reason in the file.
expected="$interop/expected/$requirements-$child.yml"
baseline=()
[ -f "$expected" ] && baseline=(--expected-failures "$expected")
echo "conformance: requirements $requirements${scenario:+ (scenario $scenario)}, $child child, $url (results in $out)"
[ ${#baseline[@]} -gt 0 ] && echo "conformance: expected to fail, as $expected explains: $(grep -E '^\s+- ' "$expected" | tr -d ' -' | paste -sd, -)"
timeout --kill-after=10 "$RUN_TIMEOUT" "$node22" "$cli" server --url "$url" "${selection[@]}" \
  "${baseline[@]}" -o "$out" "${extra[@]}"
status=$?
[ "$status" -eq 124 ] && echo "conformance: no result after ${RUN_TIMEOUT}s" >&2

if [ "$details" -eq 1 ]; then
  "$node22" --input-type=module - "$out" <<'JS'
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
const out = process.argv[2];
for (const dir of readdirSync(out).filter((d) => d.startsWith('server-')).sort()) {
  const file = path.join(out, dir, 'checks.json');
  if (!existsSync(file)) continue;
  for (const c of JSON.parse(readFileSync(file, 'utf8'))) {
    if (c.status !== 'FAILURE') continue;
    console.log(`FAIL ${dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '')}  ${c.id}: ${c.errorMessage ?? c.description}`);
  }
}
JS
fi

stop_bridge
trap - EXIT
if [ "$status" -ne 0 ]; then
  echo "--- bridge log (tail; all of it in $out/bridge.log) ---" >&2
  tail -n 30 "$out/bridge.log" >&2
elif [ "$keep" -eq 0 ]; then
  rm -rf "$out"
fi
exit "$status"
