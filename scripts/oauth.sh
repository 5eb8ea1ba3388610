#!/usr/bin/env bash
# The bridge as an OAuth resource server against real parts (scripts/interop/oauth/): a real
# authorization server (npm oidc-provider, started by the tests on 127.0.0.1) issuing JWT access
# tokens for the bridge's resource, and the official TypeScript SDK client signing in with
# client_credentials. Covers the discovery chain, refused tokens, scopes, key rotation, subject
# binding and --isolation user with --claim-env.
# Env: BRIDGE_BIN, FIXTURE_BIN   binaries under test (default: target/debug/ of this repo)
# Installs its npm packages on first use (npm ci), and again only when package-lock.json changes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/scripts/interop/oauth"
export BRIDGE_BIN="$(readlink -f "${BRIDGE_BIN:-$root/target/debug/mcp-http-bridge}")"
export FIXTURE_BIN="$(readlink -f "${FIXTURE_BIN:-$root/target/debug/fake-mcp-server}")"
for bin in "$BRIDGE_BIN" "$FIXTURE_BIN"; do
  [ -x "$bin" ] || { echo "oauth: no executable at $bin (cargo build --bins --features fixtures)" >&2; exit 2; }
done
command -v node >/dev/null || { echo "oauth: node (>= 20) not found" >&2; exit 2; }

stamp="$dir/node_modules/.oauth-lock-sha256"
digest="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "oauth: npm ci"
  (cd "$dir" && npm ci --no-audit --no-fund)
  echo "$digest" >"$stamp"
fi
cd "$dir"
exec timeout --kill-after=10 300 node --test --test-reporter=spec .
