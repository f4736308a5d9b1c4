#!/usr/bin/env bash
# Generated clients work unedited: checks the committed spec (openapi/openapi.json, or $1)
# with the two generators client developers use.
#
# 1. openapi-python-client (pinned in requirements.txt) generates the Python client; any
#    warning fails, but those about binary bodies (downloads, the backup archive, multipart
#    uploads), which it cannot type (generator_warnings.py reads its output).
# 2. With a tasker binary (TASKER_BIN, default target/debug/tasker; with CI=true it must
#    exist), a server is started and smoke.py calls it through that client: the spec's
#    examples succeed and the answers parse into their documented types. Then scenario.py
#    walks the whole product scenario through the same client, typed calls only.
# 3. With Node, openapi-typescript (pinned in package.json and package-lock.json, installed
#    with `npm ci`) generates the TypeScript types, and `tsc --strict --noEmit` compiles them
#    with usage.ts (typed calls through openapi-fetch). Without Node this is skipped, saying so.
#
# The Python packages go into a temporary venv (or a --target directory where the venv module
# is missing), the npm packages into a temporary directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
spec="$(cd "$(dirname "${1:-$root/openapi/openapi.json}")" && pwd)/$(basename "${1:-openapi.json}")"
bin="${TASKER_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/tasker}"

work="$(mktemp -d)"
server_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- openapi-python-client ($(grep -o '^openapi-python-client==[^ ]*' "$here/requirements.txt"))"
if python3 -m venv "$work/venv" >/dev/null 2>&1; then
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    -r "$here/requirements.txt"
  py="$work/venv/bin/python"
  # The generator formats the client with ruff, which it finds on PATH.
  export PATH="$work/venv/bin:$PATH"
else
  python3 -m pip install --quiet --disable-pip-version-check --require-hashes \
    --target "$work/pylib" -r "$here/requirements.txt"
  export PYTHONPATH="$work/pylib${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$work/pylib/bin:$PATH"
  py=python3
fi
mkdir -p "$work/py"
status=0
(cd "$work/py" && "$py" -m openapi_python_client generate --path "$spec" --meta none \
  --output-path "$work/py/tasker_client") >"$work/generate.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$work/generate.log"
  echo "openapi-python-client failed (exit $status)"
  exit 1
fi
if ! python3 "$here/generator_warnings.py" "$work/generate.log"; then
  echo "openapi-python-client warned about the spec: fix the spec, or the client misses these pieces"
  exit 1
fi

echo "-- the generated Python client against a live server"
if [ -x "$bin" ]; then
  "$bin" serve --listen 127.0.0.1:0 --log-format json --data-dir "$work/data" \
    --bcrypt-cost 4 >"$work/server.log" 2>&1 &
  server_pid=$!
  base="$(python3 - "$work/server.log" <<'PY'
import json, sys, time
for _ in range(300):
    for line in open(sys.argv[1]):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if "listening" in event.get("message", ""):
            print("http://" + event["address"])
            sys.exit(0)
    time.sleep(0.1)
sys.exit("the server did not start:\n" + open(sys.argv[1]).read())
PY
)"
  PYTHONPATH="$work/py${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here/smoke.py" "$base" "$spec"
  PYTHONPATH="$work/py${PYTHONPATH:+:$PYTHONPATH}" "$py" "$here/scenario.py" "$base"
elif [ "${CI:-}" = "true" ]; then
  echo "no tasker binary at $bin (build it first, or set TASKER_BIN)"
  exit 1
else
  echo "skipped: no tasker binary at $bin (build it first, or set TASKER_BIN)"
fi

echo "-- openapi-typescript and tsc --strict"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "skipped: Node.js (node and npm) is not installed"
  exit 0
fi
mkdir -p "$work/ts"
cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$here/usage.ts" "$work/ts/"
(
  cd "$work/ts"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  ./node_modules/.bin/openapi-typescript "$spec" -o schema.d.ts
  ./node_modules/.bin/tsc --strict --noEmit --target es2022 --module esnext \
    --moduleResolution bundler schema.d.ts usage.ts
)
echo "typescript: the generated types compile with --strict"
