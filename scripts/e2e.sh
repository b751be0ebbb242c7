#!/usr/bin/env bash
# The API as its consumers meet it, against a real server:
#   1. the /docs page in headless Chromium: every operation listed, a
#      signed-in "Try it out" of GET /api/v1/auth/me answering 200, no
#      request to any other host; screenshots in target/e2e/;
#   2. a TypeScript client generated from the served document
#      (openapi-typescript) and a program using it (openapi-fetch) that
#      type-checks with `tsc` and then signs in, registers and lists a
#      patient and reads a report;
#   3. the Postman collection from scripts/postman.sh, checked and two of
#      its requests replayed.
#
#   scripts/e2e.sh
#
# Installs what it needs: the npm packages pinned in
# tests/clients/package-lock.json, and Debian's chromium (with apt-get)
# when $CHROMIUM (default /usr/bin/chromium) is missing. Starts its own
# throwaway database and debug server on free ports, stops both on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/lib.sh
CLIENTS="$ROOT/tests/clients"
OUT="$ROOT/target/e2e"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  if [ "$CHROMIUM" != /usr/bin/chromium ]; then
    echo "error: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
  fi
  echo "e2e.sh: installing Debian's chromium" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
ensure_node_modules "$CLIENTS"

trap stop_app EXIT
start_app e2e
rm -rf "$OUT" "$CLIENTS/generated"
mkdir -p "$OUT"

echo "e2e.sh: 1/3 the docs page ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
node "$CLIENTS/docs-page.mjs" "$APP_BASE" "$APP_TOKEN" "$OUT"

echo "e2e.sh: 2/3 the generated TypeScript client"
"$CLIENTS/node_modules/.bin/openapi-typescript" "$APP_BASE/api/v1/openapi.json" \
  -o "$CLIENTS/generated/api.d.ts" >/dev/null
(cd "$CLIENTS" && node_modules/.bin/tsc --noEmit -p . && node_modules/.bin/tsc -p .)
node "$CLIENTS/typescript/run.mjs" "$CLIENTS/generated/build" "$APP_BASE" \
  "$APP_ADMIN_EMAIL" "$APP_ADMIN_PASSWORD"

echo "e2e.sh: 3/3 the Postman collection"
scripts/postman.sh "$APP_BASE" "$OUT/healthcrm.postman_collection.json"
operations="$(curl -fsS "$APP_BASE/api/v1/openapi.json" | "$PYTHON" -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(m in ("get", "post", "put", "patch", "delete") for item in doc["paths"].values() for m in item))')"
node "$CLIENTS/postman-check.mjs" "$OUT/healthcrm.postman_collection.json" "$operations" \
  "$APP_ADMIN_EMAIL" "$APP_ADMIN_PASSWORD"
echo "e2e.sh: all passed"
