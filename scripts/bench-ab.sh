#!/usr/bin/env bash
# Compares builds on the load benchmark's first row (an authenticated
# `GET /patients/{id}`), running them in turn, each on a fresh local
# database, so that a change is told apart from the stand-in's own drift
# (docs/benchmarks.md: every before/after figure there was taken this way).
#
#   scripts/bench-ab.sh save NAME
#       builds this working tree (release, the benchmark feature) and keeps
#       its `bench_load`, `bench_readcache` and `healthcrm` in
#       target/bench-builds/NAME/
#   scripts/bench-ab.sh run [--rounds N] [--one-worker] NAME... [-- ARGS]
#       runs each saved build in turn, N rounds (default 2), and prints each
#       run's first row prefixed by its build's name. ARGS go to bench_load
#       (default: --patients 10000 --requests 16000 --concurrency 16).
#       --one-worker puts the server and the benchmark each on one runtime
#       worker (`--server-workers 1`, TOKIO_WORKER_THREADS=1).
#
# The figures are the stand-in's on this machine, not MongoDB's. Run
# nothing else meanwhile: the host's idle CPU changes how often the
# server's workers park, and so its CPU per request.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/lib.sh
BUILDS="$ROOT/target/bench-builds"

usage() {
  sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

save() {
  local name="$1"
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "error: a build's name is letters, digits, '.', '_' or '-'" >&2; exit 2; }
  cargo build --release --features bench --bin bench_load --bin bench_readcache --bin healthcrm
  mkdir -p "$BUILDS/$name"
  cp target/release/bench_load target/release/bench_readcache target/release/healthcrm "$BUILDS/$name/"
  echo "bench-ab: saved $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes') as $name"
}

# What a run leaves to stop: the benchmark, its server, its database.
bench="" db_port=""
cleanup() {
  if [ -n "$bench" ]; then
    # Its server first, by parent pid (not by name: another run may share
    # it); the server drains gracefully on SIGTERM, so it is waited for.
    local servers pid
    servers="$(pgrep -P "$bench" || true)"
    pkill -P "$bench" 2>/dev/null || true
    kill "$bench" 2>/dev/null || true
    wait "$bench" 2>/dev/null || true
    for pid in $servers; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done
  fi
  if [ -n "$db_port" ]; then
    # db.sh leaves alone a database named by MONGODB_URI: this one is ours.
    env -u MONGODB_URI DB_PORT="$db_port" DB_DATA_DIR="$(db_dir "$db_port")" \
      scripts/db.sh stop >/dev/null || true
    rm -rf "$(db_dir "$db_port")"
  fi
  bench="" db_port=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# The data directory of the stand-in on port $1.
db_dir() { echo "$ROOT/.local/bench-ab-$1"; }

# One run of build $1 with bench_load arguments $2...; prints its first row.
one() {
  local name="$1" dir="$BUILDS/$1" log uri row
  shift
  log="$(mktemp)"
  db_port="$(free_port)"
  rm -rf "$(db_dir "$db_port")"
  # Always a fresh local stand-in, never a database named in the shell.
  uri="$(env -u MONGODB_URI DB_PORT="$db_port" DB_DATA_DIR="$(db_dir "$db_port")" scripts/db.sh start)"
  MONGODB_URI="$uri" RUST_LOG=error "$dir/bench_load" "$@" --out "$log.md" >"$log" 2>&1 &
  bench=$!
  # The first row is printed as soon as it is measured; the rest are not needed.
  while kill -0 "$bench" 2>/dev/null && ! grep -q '^| GET /patients/{id} ' "$log"; do sleep 0.5; done
  cleanup
  row="$(grep '^| GET /patients/{id} ' "$log" || true)"
  [ -n "$row" ] || { echo "bench-ab: $name gave no row; its output:" >&2; cat "$log" >&2; }
  rm -f "$log" "$log.md"
  [ -n "$row" ] && echo "$name $row"
}

run() {
  local rounds=2 one_worker=0 names=() args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --rounds) rounds="${2:-}"; shift 2 || usage ;;
      --one-worker) one_worker=1; shift ;;
      --) shift; args=("$@"); break ;;
      -*) usage ;;
      *) names+=("$1"); shift ;;
    esac
  done
  [ "${#names[@]}" -gt 0 ] || usage
  [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "error: --rounds takes a count of at least 1" >&2; exit 2; }
  for name in "${names[@]}"; do
    [ -x "$BUILDS/$name/bench_load" ] || { echo "error: no build saved as $name (scripts/bench-ab.sh save $name)" >&2; exit 2; }
  done
  [ "${#args[@]}" -gt 0 ] || args=(--patients 10000 --requests 16000 --concurrency 16)
  if [ "$one_worker" = 1 ]; then
    export TOKIO_WORKER_THREADS=1
    args+=(--server-workers 1)
  fi
  for _ in $(seq 1 "$rounds"); do
    for name in "${names[@]}"; do
      one "$name" "${args[@]}"
    done
  done
}

case "${1:-}" in
  save) [ $# -eq 2 ] || usage; save "$2" ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
