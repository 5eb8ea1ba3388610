#!/usr/bin/env bash
# Builds the bridge, the example server and the load generator, runs the benchmark scenarios
# (each on a freshly started bridge, on 127.0.0.1 only) and prints one markdown table.
# The table, with the date, commit and machine, is also written to bench/target/results.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [--help] [MCP-BENCH OPTION]...

Builds `cargo build --release --bins --features fixtures` at the repository root and the bench package, then runs
every scenario (or those in SCENARIOS) and prints one markdown table; also written, with the
date, commit, nproc and CPU model, to bench/target/results.md. The default full run takes
about 2 minutes after the builds.

environment:
  SCENARIOS="stream-1x1 sse-16x4"   scenarios to run (default: all; names in bench/README.md)
  DURATION=10                       measured seconds per scenario
  WARMUP=2                          seconds of calls before each measured window
  BRIDGE=path                       another bridge binary (default: the one just built)

Further arguments go to the load generator (for example --ceiling, --idle-batch 128,
--bridge-arg ARG);
`bench/target/release/mcp-bench --help` lists them.
Exit status: 0 when every scenario ran without a single error, 1 otherwise.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
root_target=${CARGO_TARGET_DIR:-$root/target}
bench_target=$here/target

echo "building the bridge and the example server (release) ..." >&2
(cd "$root" && cargo build --quiet --release --bins --features fixtures)
echo "building the load generator (release) ..." >&2
cargo build --quiet --release --manifest-path "$here/Cargo.toml" --target-dir "$bench_target"

bridge=${BRIDGE:-$root_target/release/mcp-http-bridge}
server=$root_target/release/fake-mcp-server
mkdir -p "$bench_target/logs"
table=$bench_target/table.md
read -r -a scenarios <<<"${SCENARIOS:-}"

status=0
"$bench_target/release/mcp-bench" \
  --bridge "$bridge" --server "$server" \
  --duration "${DURATION:-10}" --warmup "${WARMUP:-2}" \
  --log-dir "$bench_target/logs" \
  "$@" ${scenarios[@]+"${scenarios[@]}"} >"$table" || status=$?

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
{
  echo "mcp-bench, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo "$(nproc) CPU(s), ${cpu:-unknown CPU}, $(uname -sr);" \
    "duration ${DURATION:-10} s after ${WARMUP:-2} s of warm-up per scenario"
  echo
  cat "$table"
} >"$bench_target/results.md"

echo >&2
cat "$bench_target/results.md"
if [ "$status" -ne 0 ]; then
  echo >&2
  echo "mcp-bench exited with status $status (errors or a failed scenario: see above and $bench_target/logs/)" >&2
fi
exit "$status"
