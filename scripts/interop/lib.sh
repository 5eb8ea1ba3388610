# Shell helpers shared by scripts/interop.sh and scripts/conformance.sh (source it; needs bash).
# Expects $interop (this folder) to be set and a die() function defined by the caller.

# Hash of a file; an install is redone only when its lock file's hash changes.
digest() { sha256sum "$1" | cut -d' ' -f1; }

# npm ci into $interop when package-lock.json changed since the last install, then checks that
# the pinned Node 22 (the `node` npm package, which the conformance suite needs) is there.
install_node() {
  local stamp="$interop/node_modules/.interop-lock-sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(digest "$interop/package-lock.json")" ]; then
    echo "interop: npm ci"
    (cd "$interop" && npm ci --no-audit --no-fund) || die "npm ci failed"
    digest "$interop/package-lock.json" >"$stamp"
  fi
  local v
  v="$("$interop/node_modules/node/bin/node" --version 2>/dev/null)"
  [[ "$v" == v22.* ]] || die "the pinned Node 22 did not install (got '${v:-nothing}'); were npm install scripts disabled?"
}

# A venv in $interop/.venv with requirements.txt, redone when requirements.txt changed.
install_python() {
  local venv="$interop/.venv" stamp="$interop/.venv/.interop-requirements-sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(digest "$interop/requirements.txt")" ]; then
    echo "interop: creating $venv"
    "${PYTHON:-python3}" -m venv --clear "$venv" || die "python venv failed"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$interop/requirements.txt" || die "pip install failed"
    digest "$interop/requirements.txt" >"$stamp"
  fi
}
