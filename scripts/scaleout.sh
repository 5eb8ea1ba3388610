#!/usr/bin/env bash
# Scale-out test: three mcp-http-bridge instances (--instance-id b1 b2 b3, debug build, already
# built) behind a load balancer run from the configuration the repository ships:
#   haproxy  deploy/haproxy.cfg as is (environment variables give it the instances' addresses)
#   nginx    deploy/nginx.conf with its placeholders filled in (envsubst-style)
# with 50 session clients (Streamable HTTP and legacy HTTP+SSE) and 2026-07-28 clients of the
# official TypeScript SDK: routing by session id prefix, one instance SIGKILLed, one drained
# with SIGTERM (scripts/interop/scaleout/scaleout.test.mjs says exactly what is checked).
#
# Usage: scripts/scaleout.sh [haproxy] [nginx]      (default: both)
# Env:   BRIDGE_BIN, FIXTURE_BIN   binaries under test (default: target/debug/ of this repo)
#        SCALEOUT_LOGDIR           keep every process's full log there (default: a temporary
#                                  directory, shown and kept only when a run fails)
# Installs haproxy / nginx (Debian packages, apt-get) and the interop npm packages when missing.
# Prints one line per balancer; exits non-zero if any run fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export interop="$here/interop"
export BRIDGE_BIN="${BRIDGE_BIN:-$root/target/debug/mcp-http-bridge}"
export FIXTURE_BIN="${FIXTURE_BIN:-$root/target/debug/fake-mcp-server}"
RUN_TIMEOUT=150 # seconds per balancer (a run takes about 20)

die() { echo "scaleout: $*" >&2; exit 2; }
for bin in "$BRIDGE_BIN" "$FIXTURE_BIN"; do
  [ -x "$bin" ] || die "no executable at $bin (build it with 'cargo build --bins --features fixtures', or set BRIDGE_BIN/FIXTURE_BIN)"
done
BRIDGE_BIN="$(readlink -f "$BRIDGE_BIN")" FIXTURE_BIN="$(readlink -f "$FIXTURE_BIN")"
"$BRIDGE_BIN" --help | grep -q -- '--instance-id' || die "$BRIDGE_BIN has no --instance-id (too old?)"
command -v node >/dev/null || die "node (>= 20) not found"

balancers=("$@")
[ ${#balancers[@]} -eq 0 ] && balancers=(haproxy nginx)

# The balancer's Debian package, installed when its binary is missing (CI runs as root).
apt_updated=
need() {
  local bin=$1 pkg=$2
  command -v "$bin" >/dev/null && return 0
  echo "scaleout: installing $pkg (apt-get install $pkg)"
  if [ -z "$apt_updated" ]; then apt-get update -qq || return 1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null || return 1
  # The package may start a system instance on the default port; these tests run their own.
  if command -v systemctl >/dev/null; then systemctl stop "$pkg" 2>/dev/null || true; fi
  command -v "$bin" >/dev/null
}
for lb in "${balancers[@]}"; do
  case "$lb" in
    haproxy | nginx) need "$lb" "$lb" || die "could not install $lb" ;;
    *) die "unknown balancer '$lb' (haproxy, nginx)" ;;
  esac
done
export PATH="$PATH:/usr/sbin:/sbin" # where Debian puts both

# shellcheck source=interop/lib.sh
source "$interop/lib.sh"
install_node

logroot="${SCALEOUT_LOGDIR:-$(mktemp -d)}"
declare -A verdict summary
failed=0
for lb in "${balancers[@]}"; do
  echo
  echo "=============== scaleout: $lb ($("$lb" -v 2>&1 | head -1)) ==============="
  mkdir -p "$logroot/$lb"
  sumfile="$logroot/$lb/summary.txt"
  rm -f "$sumfile"
  started=$(date +%s)
  (cd "$interop" && SCALEOUT_LB="$lb" SCALEOUT_LOGDIR="$logroot/$lb" SCALEOUT_SUMMARY_FILE="$sumfile" \
    timeout --kill-after=10 "$RUN_TIMEOUT" node --test --test-reporter=spec scaleout/) 2>&1 | tee "$logroot/$lb/test.log"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 124 ] && echo "scaleout: $lb timed out after ${RUN_TIMEOUT}s"
  if [ "$status" -eq 0 ] && [ -s "$sumfile" ]; then
    verdict[$lb]=PASS
    summary[$lb]="$(head -1 "$sumfile")"
  else
    verdict[$lb]=FAIL
    failed=1
    summary[$lb]="$(grep -m1 -A2 -E '^\s*(AssertionError|Error)' "$logroot/$lb/test.log" | tr -s ' \n' ' ' | cut -c1-300)"
  fi
  summary[$lb]="${summary[$lb]} [$(($(date +%s) - started)) s]"
done

echo
echo "=============== scaleout: summary ==============="
echo "bridge:  $BRIDGE_BIN"
for lb in "${balancers[@]}"; do
  printf '%-8s %s  %s\n' "$lb" "${verdict[$lb]}" "${summary[$lb]:-(no summary)}"
done
if [ "$failed" -ne 0 ]; then
  echo "scaleout: logs (test output, every process's log) kept in $logroot"
elif [ -z "${SCALEOUT_LOGDIR:-}" ]; then
  rm -rf "$logroot"
fi
exit "$failed"
