#!/usr/bin/env bash
# A local S3-compatible server for the document store's S3 test.
#
#   scripts/s3.sh start|stop
#
# Installs moto (its server mode, pinned below) into .local/s3-venv if
# missing, runs it on 127.0.0.1:$S3_PORT and creates the bucket
# $S3_BUCKET. `start` prints the endpoint URL. moto keeps objects in
# memory and checks no signatures: a test server, never for real data.
#
# Environment:
#   S3_PORT    port to listen on (default 9000)
#   S3_BUCKET  bucket to create (default healthcrm-test)
set -euo pipefail

MOTO_VERSION="5.1.22"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/s3-venv"
PORT="${S3_PORT:-9000}"
BUCKET="${S3_BUCKET:-healthcrm-test}"
PID_FILE="$LOCAL/run/moto-$PORT.pid"
LOG_FILE="$LOCAL/run/moto-$PORT.log"
. "$ROOT/scripts/lib.sh"

say() { echo "s3.sh: $*" >&2; }

install() {
  if [ -x "$VENV/bin/moto_server" ] && [ "$("$VENV/bin/python" -c \
      'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$MOTO_VERSION" ]; then
    return 0
  fi
  ensure_venv "$VENV" "moto[server]==$MOTO_VERSION"
}

running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

answers() {
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/moto-api/" 2>/dev/null
}

start() {
  install
  mkdir -p "$(dirname "$PID_FILE")"
  if ! (running && answers); then
    require_free_port "$PORT" "the S3 test server" S3_PORT
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
      answers && break
      if ! running; then break; fi
      sleep 0.2
    done
    if ! answers; then
      say "failed to start; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      return 1
    fi
  fi
  # moto checks no signature: a plain PUT creates the bucket.
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$PORT/$BUCKET" \
    || { say "cannot create bucket $BUCKET"; return 1; }
  say "running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE")), bucket $BUCKET"
  echo "http://127.0.0.1:$PORT"
}

stop() {
  if running; then
    local pid
    pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped (pid $pid)"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
