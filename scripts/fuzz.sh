#!/usr/bin/env bash
# Fuzzes the served OpenAPI document with schemathesis (from PyPI, pinned,
# in its own virtualenv under .local/) against a running server signed in as
# an admin: no 5xx, and every response's status, content type and body as
# documented (errors in the contract's shape). Bounded by FUZZ_EXAMPLES per
# operation (default 20) and FUZZ_MAX_TIME seconds (default 180, plus 30 for
# the permission matrix).
#
#   scripts/fuzz.sh [extra schemathesis args]
#
# Starts its own throwaway database and server on free ports (debug build,
# shared with the test build) and stops both on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCHEMATHESIS_VERSION="4.32.5"
VENV="$ROOT/.local/fuzz-venv"
PYTHON="${PYTHON:-python3}"

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export DB_PORT="$(free_port)"
export DB_DATA_DIR="$ROOT/.local/fuzzdb-$DB_PORT"
APP_PORT="$(free_port)"
rm -rf "$DB_DATA_DIR"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  (unset MONGODB_URI; scripts/db.sh stop >/dev/null) || true
  rm -rf "$DB_DATA_DIR" "$ROOT/.local/fuzz-documents"
}
trap cleanup EXIT
MONGODB_URI="$(unset MONGODB_URI; scripts/db.sh start)"

cargo build --quiet --bin healthcrm --bin seed

random() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }
ADMIN_PASSWORD="$(random 24)"
export MONGODB_URI MONGODB_DB="fuzz" JWT_SECRET="$(random 48)" \
  BIND_ADDR="127.0.0.1:$APP_PORT" LOG_FORMAT="${LOG_FORMAT:-json}" RUST_LOG="${RUST_LOG:-warn}" \
  SEED_ADMIN_EMAIL="fuzz.admin@healthcrm.test" SEED_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  ACCESS_TOKEN_TTL_SECS=7200 AUTH_RATE_LIMIT_PER_MINUTE=1000000 \
  DOCUMENT_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  DOCUMENT_STORE="$ROOT/.local/fuzz-documents"
target/debug/seed >/dev/null
target/debug/healthcrm >"$ROOT/.local/fuzz-server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$APP_PORT"
for _ in $(seq 1 100); do
  curl -fsS "$base/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
TOKEN="$(curl -fsS -H 'content-type: application/json' \
  -d "{\"email\":\"$SEED_ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" \
  "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

echo "fuzz.sh: schemathesis $SCHEMATHESIS_VERSION against $base"
fuzz() {
  "$VENV/bin/st" run "$base/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "${FUZZ_EXAMPLES:-20}" \
    --seed "${FUZZ_SEED:-20261123}" \
    --generation-database none \
    --generation-with-security-parameters false \
    --workers 2 \
    --no-color \
    "$@"
}
# Random rules put to the admin role would deny the admin most routes and
# leave the rest of the run answering 403, so that one operation runs last,
# on its own.
fuzz --exclude-name "PUT /api/v1/permissions/{role}" --max-time "${FUZZ_MAX_TIME:-180}" "$@"
fuzz --include-name "PUT /api/v1/permissions/{role}" --max-time 30 "$@"
