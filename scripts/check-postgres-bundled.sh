#!/usr/bin/env bash
# The `postgres-bundled` feature: builds the demo with libpq and OpenSSL
# compiled from source, checks that the binary links neither the system's
# libpq nor its OpenSSL, then runs it on a scratch PostgreSQL database and
# lists the users through the JSON API (migrations and queries through the
# bundled libpq). Exits non-zero on any of these failing.
#
#   FRONTDESK_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test scripts/check-postgres-bundled.sh
#
# Knobs: BUNDLED_PORT (18095).
set -euo pipefail
cd "$(dirname "$0")/.."

admin="${FRONTDESK_TEST_POSTGRES:?set FRONTDESK_TEST_POSTGRES=postgres://…/any_db}"
port="${BUNDLED_PORT:-18095}"

cargo build --quiet --locked --example demo --features postgres-bundled
bin="${CARGO_TARGET_DIR:-target}/debug/examples/demo"

linked="$(ldd "$bin")"
if grep -Eq 'lib(pq|ssl|crypto)\.so' <<<"$linked"; then
    echo "the postgres-bundled demo links a system library it should carry itself:" >&2
    grep -E 'lib(pq|ssl|crypto)\.so' <<<"$linked" >&2
    exit 1
fi
echo "links no system libpq, libssl or libcrypto"

. scripts/demo-lib.sh
db="frontdesk_bundled_$$"
base="${admin%/*}"
psql "$admin" -qc "CREATE DATABASE $db"
DEMO_ON_EXIT='psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"'
demo_start "$bin" "$port" DEMO_DATABASE_URL="$base/$db"
answer="$(demo_call "http://127.0.0.1:$port/admin/api/v1/users")" || {
    echo "the postgres-bundled demo did not answer GET /admin/api/v1/users" >&2
    exit 1
}
total="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])' <<<"$answer")"
if [ "$total" -lt 1 ]; then
    echo "the users list on PostgreSQL is empty: $answer" >&2
    exit 1
fi
echo "ran on PostgreSQL through the bundled libpq: GET /admin/api/v1/users answered $total user(s)"
