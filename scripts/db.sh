#!/usr/bin/env bash
# Local MongoDB stand-in for development and tests.
#
#   scripts/db.sh start|stop|status|install
#
# Installs nx-27017 (a MongoDB wire-protocol server on SQLite, pinned below)
# into .local/venv if missing and runs it on 127.0.0.1. Production uses real
# MongoDB (docker-compose.yml). When MONGODB_URI is already set in the
# environment, this script leaves the database to the user and does nothing.
#
# Environment:
#   DB_PORT      port to listen on (default 27017)
#   DB_DATA_DIR  where the data lives (default .local/db/<port>)
#   MONGODB_URI  when set: use that database, start nothing
set -euo pipefail

NX_VERSION="0.8.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
PORT="${DB_PORT:-27017}"
DATA_DIR="${DB_DATA_DIR:-$LOCAL/db/$PORT}"
PID_FILE="$LOCAL/run/nx-$PORT.pid"
LOG_FILE="$LOCAL/run/nx-$PORT.log"
. "$ROOT/scripts/lib.sh"

say() { echo "db.sh: $*" >&2; }

install() {
  if [ -x "$VENV/bin/nx-27017" ] && [ "$("$VENV/bin/python" -c \
      'import importlib.metadata as m; print(m.version("nx-27017"))' 2>/dev/null)" = "$NX_VERSION" ]; then
    return 0
  fi
  ensure_venv "$VENV" "nx-27017==$NX_VERSION"
}

running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

# True once the server answers a MongoDB ping.
answers() {
  "$VENV/bin/python" - "$PORT" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
c = MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}", serverSelectionTimeoutMS=500, connectTimeoutMS=500)
c.admin.command("ping")
PY
}

start() {
  if [ -n "${MONGODB_URI:-}" ]; then
    say "MONGODB_URI is set; using that database and starting nothing"
    return 0
  fi
  install
  if running && answers; then
    say "already running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
    echo "mongodb://127.0.0.1:$PORT"
    return 0
  fi
  require_free_port "$PORT" "the local database" \
    "DB_PORT (or set MONGODB_URI to use the database already there)"
  mkdir -p "$DATA_DIR" "$(dirname "$PID_FILE")"
  # nx-27017 keeps its own pid file (default: one per machine in /tmp); give
  # each port its own so a test database can run beside the dev database.
  nohup "$VENV/bin/nx-27017" --host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" \
    --pid-file "$LOCAL/run/nx-$PORT.self.pid" --log-file "$LOG_FILE" >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then
      say "running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"), data in $DATA_DIR)"
      echo "mongodb://127.0.0.1:$PORT"
      return 0
    fi
    if ! running; then break; fi
    sleep 0.2
  done
  say "failed to start; last lines of $LOG_FILE:"
  tail -n 20 "$LOG_FILE" >&2 || true
  return 1
}

stop() {
  if [ -n "${MONGODB_URI:-}" ]; then
    say "MONGODB_URI is set; the database is not ours to stop"
    return 0
  fi
  if running; then
    local pid
    pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped (pid $pid)"
  else
    say "not running on port $PORT"
  fi
  rm -f "$PID_FILE"
}

status() {
  if [ -n "${MONGODB_URI:-}" ]; then
    say "MONGODB_URI is set; the database is managed outside this script"
    return 0
  fi
  if running && [ -x "$VENV/bin/python" ] && answers; then
    say "running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
  else
    say "not running on port $PORT"
    return 1
  fi
}

case "${1:-}" in
  install) install; echo "$VENV/bin/nx-27017" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
