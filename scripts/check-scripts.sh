#!/usr/bin/env bash
# Tests of the scripts' own failure handling (run by scripts/test.sh):
#   - a port held by another process is refused, naming the setting to change;
#   - a virtualenv left half-made is deleted and made again;
#   - a server that never becomes ready fails start_app loudly, with its log;
#   - docker-compose.yml passes `docker compose config` (skipped, with a
#     message, where the compose plugin is not installed);
#   - the build comparison (bench-ab.sh) refuses an unsaved build and a
#     name with a path in it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/lib.sh
failures=0
pass() { echo "check-scripts: ok: $*"; }
fail() { echo "check-scripts: FAIL: $*" >&2; failures=$((failures + 1)); }
scratch="$(mktemp -d)"
holder=""
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

# 1. A busy port.
port="$(free_port)"
"$PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)' "$port" &
holder=$!
for _ in $(seq 1 50); do port_in_use "$port" && break; sleep 0.1; done
if out="$(unset MONGODB_URI; DB_PORT="$port" DB_DATA_DIR="$scratch/db" scripts/db.sh start 2>&1)"; then
  fail "db.sh started on a port another process holds: $out"
elif grep -q "port $port (the local database) is already in use" <<<"$out" && grep -q DB_PORT <<<"$out"; then
  pass "db.sh refuses busy port $port and names DB_PORT"
else
  fail "db.sh on a busy port said: $out"
fi
if out="$(S3_PORT="$port" scripts/s3.sh start 2>&1)"; then
  fail "s3.sh started on a busy port"
elif grep -q "already in use" <<<"$out" && grep -q S3_PORT <<<"$out"; then
  pass "s3.sh refuses busy port $port and names S3_PORT"
else
  fail "s3.sh on a busy port said: $out"
fi
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
holder=""

# 2. A half-made virtualenv (an install interrupted after `venv`, before pip).
venv="$scratch/venv"
"$PYTHON" -m venv --without-pip "$venv"
if ! ensure_venv "$venv" "six==1.16.0" 2>"$scratch/pip.log"; then
  fail "ensure_venv could not install six: $(tail -n 5 "$scratch/pip.log")"
elif "$venv/bin/python" -c 'import six; assert six.__version__ == "1.16.0"' 2>/dev/null; then
  pass "a half-made virtualenv is rebuilt"
else
  fail "ensure_venv left a broken virtualenv"
fi
# ...and one whose pin changed is not reused as it is.
echo "six==0.0.0" >"$venv/.healthcrm-installed"
rebuilt="$(ensure_venv "$venv" "six==1.16.0" 2>&1)" || true
if grep -q "installing six==1.16.0" <<<"$rebuilt"; then pass "a changed pin rebuilds the virtualenv"; else fail "a changed pin was not reinstalled"; fi

# 3. A server that never becomes ready (here: a bad setting).
if out="$(TRUSTED_PROXIES=not-a-network ROOT="$ROOT" bash -c \
  'set -euo pipefail; . scripts/lib.sh; trap stop_app EXIT; start_app checkfail' 2>&1)"; then
  fail "start_app went on with a server that never became ready"
elif grep -q "never became ready" <<<"$out" && grep -q "TRUSTED_PROXIES entry 'not-a-network'" <<<"$out"; then
  pass "start_app fails loudly with the server's own error"
else
  fail "start_app on a failing server said: $out"
fi

# 4. The compose file: valid with the secrets filled in, refused without them.
if docker compose version >/dev/null 2>&1; then
  sed -e 's/^JWT_SECRET=.*/JWT_SECRET=0123456789abcdef0123456789abcdef0123456789/' \
    -e 's/^DOCUMENT_KEY=.*/DOCUMENT_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff/' \
    -e 's/^MONGO_APP_PASSWORD=.*/MONGO_APP_PASSWORD=apppassword0123/' .env.example >"$scratch/compose.env"
  # The project as a deployment would have it: mongo.env beside the file.
  mkdir -p "$scratch/project/scripts/docker"
  cp docker-compose.yml "$scratch/project/"
  cp scripts/docker/mongo-init.js "$scratch/project/scripts/docker/"
  printf 'MONGO_INITDB_ROOT_USERNAME=root\nMONGO_INITDB_ROOT_PASSWORD=rootpassword0123\n' >"$scratch/project/mongo.env"
  if docker compose --project-directory "$scratch/project" --env-file "$scratch/compose.env" \
    -f "$scratch/project/docker-compose.yml" config --quiet; then
    pass "docker compose config accepts docker-compose.yml"
  else
    fail "docker compose config rejects docker-compose.yml"
  fi
  if out="$(docker compose --project-directory "$scratch/project" --env-file /dev/null \
    -f "$scratch/project/docker-compose.yml" config --quiet 2>&1)"; then
    fail "docker compose config accepted the file without its secrets"
  elif grep -q "set " <<<"$out"; then
    pass "docker compose config refuses to run without the secrets ($(head -n 1 <<<"$out"))"
  else
    fail "docker compose config without secrets said: $out"
  fi
else
  echo "check-scripts: skipped: docker compose config (no docker compose plugin on this machine)"
fi

# 5. The build comparison refuses a build never saved and a name that is
#    not a plain file name, before it builds or starts anything.
# `refused WHAT EXPECTED CMD...`: CMD must fail, and say EXPECTED.
refused() {
  local what="$1" expected="$2" out
  shift 2
  if out="$("$@" 2>&1)"; then
    fail "$what: it went ahead"
  elif grep -qF -- "$expected" <<<"$out"; then
    pass "$what"
  else
    fail "$what: it said: $out"
  fi
}
refused "bench-ab.sh refuses a build that was never saved" \
  "no build saved as no-such-build" scripts/bench-ab.sh run no-such-build
refused "bench-ab.sh refuses a build name with a path in it" \
  "a build's name is" scripts/bench-ab.sh save ../elsewhere

[ "$failures" -eq 0 ] || { echo "check-scripts: $failures failed" >&2; exit 1; }
echo "check-scripts: all passed"
