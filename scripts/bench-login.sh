#!/usr/bin/env bash
# Login benchmark: logins/s and an authenticated route's p50/p99 with and
# without a concurrent login flood. Uses a throwaway local database unless
# MONGODB_URI is set (it then creates and drops its own database there).
#
#   scripts/bench-login.sh [--seconds 10] [--flood 32] [--probes 2000]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${MONGODB_URI:-}" ]; then
  export DB_PORT="${BENCH_DB_PORT:-27217}"
  export DB_DATA_DIR="$ROOT/.local/benchdb"
  rm -rf "$DB_DATA_DIR"
  MONGODB_URI="$(scripts/db.sh start)"
  export MONGODB_URI
  trap 'unset MONGODB_URI; scripts/db.sh stop || true; rm -rf "$DB_DATA_DIR"' EXIT
fi
cargo build --release --features bench --bin bench_login
RUST_LOG="${RUST_LOG:-error}" target/release/bench_login "$@"
