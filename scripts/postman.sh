#!/usr/bin/env bash
# Writes a Postman collection (v2.1) of the API, converted from the OpenAPI
# document a running server serves (openapi-to-postmanv2, pinned in
# tests/clients/package-lock.json, installed on first use).
#
#   scripts/postman.sh [SERVER_URL] [OUT_FILE]
#
# SERVER_URL defaults to http://127.0.0.1:8080 (scripts/run.sh); OUT_FILE to
# target/healthcrm.postman_collection.json. Import the file in Postman
# (File > Import), then set the collection's variables: `baseUrl` (filled
# with SERVER_URL) and `token` (the `access_token` from POST
# /api/v1/auth/login). Requests inherit the collection's bearer auth.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/lib.sh
server="${1:-http://127.0.0.1:8080}"
out="${2:-$ROOT/target/healthcrm.postman_collection.json}"
ensure_node_modules tests/clients
mkdir -p "$(dirname "$out")"
node tests/clients/postman.mjs "$server" "$out"
