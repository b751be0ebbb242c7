#!/usr/bin/env bash
# The whole test suite: starts a throwaway local database, runs every test
# target, stops the database, and exits non-zero on any failure.
#
#   scripts/test.sh [extra cargo test args]
#
# With no arguments it then checks the scripts' own failure handling
# (scripts/check-scripts.sh), the docs page in headless Chromium, the
# generated TypeScript client and the Postman collection (scripts/e2e.sh;
# E2E=0 skips it), and fuzzes the served OpenAPI document with schemathesis
# (scripts/fuzz.sh, a few minutes; FUZZ=0 skips it).
#
# TEST_MONGODB_URI: run against that database instead of a throwaway one
# (each test creates and drops its own uniquely named database).
# TEST_S3_ENDPOINT: an S3-compatible server (with bucket TEST_S3_BUCKET)
# for the document store's S3 test instead of the moto one started here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/lib.sh

if [ -z "${TEST_MONGODB_URI:-}" ]; then
  # A free port unless TEST_DB_PORT names one, so a busy port cannot fail a run.
  export DB_PORT="${TEST_DB_PORT:-$(free_port)}"
  export DB_DATA_DIR="$ROOT/.local/testdb-$DB_PORT"
  # The throwaway database must not be the user's MONGODB_URI.
  (unset MONGODB_URI; scripts/db.sh stop >/dev/null 2>&1 || true)
  rm -rf "$DB_DATA_DIR"
  TEST_MONGODB_URI="$(unset MONGODB_URI; scripts/db.sh start)"
  export TEST_MONGODB_URI
  DB_STARTED=1
fi
cleanup() {
  if [ -n "${DB_STARTED:-}" ]; then (unset MONGODB_URI; scripts/db.sh stop) || true; rm -rf "$DB_DATA_DIR"; fi
  if [ -n "${S3_STARTED:-}" ]; then scripts/s3.sh stop || true; fi
}
trap cleanup EXIT

# The document store's S3 test: moto in server mode, on a free port.
if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  S3_PORT="$(free_port)"
  export S3_PORT
  TEST_S3_ENDPOINT="$(scripts/s3.sh start)"
  export TEST_S3_ENDPOINT TEST_S3_BUCKET="${S3_BUCKET:-healthcrm-test}"
  S3_STARTED=1
fi

# The fault tests start and kill databases of their own.
NX_27017_BIN="$(scripts/db.sh install)"
export NX_27017_BIN

echo "test.sh: tests use $TEST_MONGODB_URI"
cargo test --all-targets --all-features --no-fail-fast "$@"

if [ "$#" -eq 0 ]; then
  scripts/check-scripts.sh
  if [ "${E2E:-1}" != "0" ]; then scripts/e2e.sh; fi
  if [ "${FUZZ:-1}" != "0" ]; then scripts/fuzz.sh; fi
fi
