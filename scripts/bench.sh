#!/usr/bin/env bash
# Runs one benchmark binary on a throwaway local database (or on
# MONGODB_URI, where it creates and drops its own database).
#
#   scripts/bench.sh login [--seconds 10] [--flood 32] [--probes 2000]
#   scripts/bench.sh scale [--sizes 10000,100000] [--requests 500] [--concurrency 4]
#   scripts/bench.sh load [--patients 10000] [--requests 320] [--concurrency 1,16,64] [--server-workers N] [--read-cache yes|no] [--out target/bench/load.md]
#   scripts/bench.sh reports [--sizes 10000,100000] [--requests 5] [--treatments 3] [--period-days 182]
#   scripts/bench.sh documents [--mib 25] [--concurrency 1,4] [--rounds 4]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
name="${1:-}"
case "$name" in
  login|scale|reports|load|documents) shift ;;
  *) echo "usage: $0 login|scale|reports|load|documents [args]" >&2; exit 2 ;;
esac
. scripts/lib.sh
if [ -z "${MONGODB_URI:-}" ]; then
  # A free port unless BENCH_DB_PORT names one.
  export DB_PORT="${BENCH_DB_PORT:-$(free_port)}"
  require_free_port "$DB_PORT" "the benchmark's database" BENCH_DB_PORT
  export DB_DATA_DIR="$ROOT/.local/benchdb-$DB_PORT"
  rm -rf "$DB_DATA_DIR"
  MONGODB_URI="$(scripts/db.sh start)"
  export MONGODB_URI
  trap 'unset MONGODB_URI; scripts/db.sh stop || true; rm -rf "$DB_DATA_DIR"' EXIT
fi
# The load benchmark runs the server binary as its own process, and with
# --read-cache yes the read cache as another.
bins=(--bin "bench_$name" --bin healthcrm)
[ "$name" = load ] && bins+=(--bin bench_readcache)
cargo build --release --features bench "${bins[@]}"
RUST_LOG="${RUST_LOG:-error}" "target/release/bench_$name" "$@"
