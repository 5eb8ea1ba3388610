#!/usr/bin/env bash
# Runs every test: formatting, lints, the interoperability suites (official TypeScript and
# Python SDK clients, the MCP conformance suite, OAuth against oidc-provider, HAProxy and nginx
# in front of three instances; they install themselves on first use), a short run of every
# kind of benchmark scenario, the benchmark's unit tests, then the unit and integration tests.
# Set SKIP_INTEROP=1 to run only the Rust checks (and the benchmark's unit tests).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets --features fixtures -- -D warnings"
cargo clippy --all-targets --features fixtures --quiet -- -D warnings

if [[ -z "${SKIP_INTEROP:-}" && -x scripts/interop.sh ]]; then
  echo "== interop (official SDK clients, conformance suite)"
  cargo build --quiet --bins --features fixtures
  scripts/interop.sh
  # The /metrics exposition, linted by promtool.
  scripts/metrics.sh
  echo "== oauth (oidc-provider as the authorization server, official TS SDK client)"
  scripts/oauth.sh
  echo "== scale-out (HAProxy and nginx from Debian in front of 3 instances, official TS SDK clients)"
  scripts/scaleout.sh
  # The benchmark itself, briefly: every scenario kind runs and every reply checks out (the
  # figures of so short a run mean nothing; bench/run.sh exits 1 on any error).
  echo "== the benchmark, a short run of each kind of scenario (bench/run.sh --ceiling)"
  SCENARIOS="cold-3 stream-2x2 json-2x2 sse-2x2 modern-2x2 stream-2x2-mixed stream-1x1-large stream-2x2-h2 idle-50 idle-50-h2 huge-1" \
    DURATION=1 WARMUP=0 bench/run.sh --ceiling
  # The conformance suite's frozen requirement sets of both eras, through a child of each era.
  for requirements in 2025-11-25 2026-07-28; do
    for child in legacy modern; do
      echo "== conformance $requirements, $child child"
      scripts/conformance.sh --requirements "$requirements" --child "$child"
    done
  done
fi

echo "== the benchmark's own unit tests (bench/)"
cargo test --quiet --manifest-path bench/Cargo.toml

# Last, so that its summary closes the output.
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --features fixtures --lib --tests 2>&1 | grep -v -E '^[0-9T:.-]+Z +(INFO|DEBUG)' | tee "$log"
status=${PIPESTATUS[0]}
# One closing line for the whole Rust suite (unit, integration and black-box tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "rust tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
