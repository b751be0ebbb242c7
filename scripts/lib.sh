# Helpers shared by the scripts. Sourced (`. scripts/lib.sh`), never run.
# Expects ROOT (the repository) to be set by the caller.

PYTHON="${PYTHON:-python3}"

# A port nothing listens on now.
free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True when something accepts connections on 127.0.0.1:$1.
port_in_use() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# Refuses, with a message naming the setting to change, a port that another
# process already holds: the alternative is a server that fails to bind
# later, or a client talking to the wrong server.
require_free_port() {
  local port="$1" what="$2" setting="$3"
  if port_in_use "$port"; then
    echo "error: port $port ($what) is already in use by another process;" \
      "stop that process or choose another port with $setting" >&2
    return 1
  fi
}

# $1 random characters from [A-Za-z0-9].
random_string() { head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }

# A random 32-byte DOCUMENT_KEY, as 64 hex digits.
random_document_key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# ensure_venv DIR REQUIREMENT...: a virtualenv at DIR holding exactly these
# pinned requirements. The marker file is written only after pip succeeded,
# so a venv left half-made (an interrupted install, a different Python, a
# changed pin) is deleted and made again rather than used broken.
ensure_venv() {
  local venv="$1"
  shift
  local want="$*" marker="$venv/.healthcrm-installed"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
    && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    return 0
  fi
  echo "installing $want into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$want" >"$marker"
}

# ensure_node_modules DIR: the packages pinned by DIR/package-lock.json,
# installed with `npm ci` when missing or when the lock file changed.
ensure_node_modules() {
  local dir="$1" stamp="$1/node_modules/.healthcrm-lock"
  command -v npm >/dev/null || { echo "error: npm is needed (Node.js 20 or later)" >&2; return 1; }
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
    return 0
  fi
  echo "installing the pinned npm packages of $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}

# start_app NAME: a throwaway stand-in database and a debug server on free
# ports, with an admin seeded and signed in. Sets APP_BASE (the server's
# URL), APP_TOKEN (the admin's access token), APP_ADMIN_EMAIL,
# APP_ADMIN_PASSWORD and APP_LOG. Fails loudly, with the server's log, when
# the server never becomes ready. Call stop_app on exit.
start_app() {
  local name="$1" port
  export DB_PORT
  DB_PORT="$(free_port)"
  export DB_DATA_DIR="$ROOT/.local/$name-db-$DB_PORT"
  APP_DOCUMENTS="$ROOT/.local/$name-documents-$DB_PORT"
  APP_LOG="$ROOT/.local/$name-server.log"
  rm -rf "$DB_DATA_DIR" "$APP_DOCUMENTS"
  APP_DB_URI="$(unset MONGODB_URI; "$ROOT/scripts/db.sh" start)"
  (cd "$ROOT" && cargo build --quiet --bin healthcrm --bin seed)
  port="$(free_port)"
  APP_BASE="http://127.0.0.1:$port"
  APP_ADMIN_EMAIL="$name.admin@healthcrm.test"
  APP_ADMIN_PASSWORD="$(random_string 24)"
  (
    export MONGODB_URI="$APP_DB_URI" MONGODB_DB="$name" JWT_SECRET="$(random_string 48)" \
      BIND_ADDR="127.0.0.1:$port" LOG_FORMAT="${LOG_FORMAT:-json}" RUST_LOG="${RUST_LOG:-warn}" \
      SEED_ADMIN_EMAIL="$APP_ADMIN_EMAIL" SEED_ADMIN_PASSWORD="$APP_ADMIN_PASSWORD" \
      ACCESS_TOKEN_TTL_SECS=7200 AUTH_RATE_LIMIT_PER_MINUTE=1000000 \
      DOCUMENT_KEY="$(random_document_key)" DOCUMENT_STORE="$APP_DOCUMENTS"
    "$ROOT/target/debug/seed" >"$APP_LOG" 2>&1
    exec "$ROOT/target/debug/healthcrm" >>"$APP_LOG" 2>&1
  ) &
  APP_PID=$!
  local ready=""
  for _ in $(seq 1 150); do
    if curl -fsS "$APP_BASE/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$APP_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$ready" ]; then
    echo "error: the server at $APP_BASE never became ready; last lines of $APP_LOG:" >&2
    tail -n 30 "$APP_LOG" >&2 || true
    return 1
  fi
  APP_TOKEN="$(curl -fsS -H 'content-type: application/json' \
    -d "{\"email\":\"$APP_ADMIN_EMAIL\",\"password\":\"$APP_ADMIN_PASSWORD\"}" \
    "$APP_BASE/api/v1/auth/login" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')" \
    || { echo "error: the seeded admin could not sign in at $APP_BASE" >&2; return 1; }
}

stop_app() {
  if [ -n "${APP_PID:-}" ]; then
    kill "$APP_PID" 2>/dev/null || true
    wait "$APP_PID" 2>/dev/null || true
    APP_PID=""
  fi
  if [ -n "${DB_DATA_DIR:-}" ]; then
    (unset MONGODB_URI; "$ROOT/scripts/db.sh" stop >/dev/null 2>&1) || true
    rm -rf "$DB_DATA_DIR" "${APP_DOCUMENTS:-}"
  fi
  return 0
}
