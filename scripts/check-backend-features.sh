#!/usr/bin/env bash
# Each database backend alone: the demo built with only `sqlite`, then with
# only `postgres` (`--no-default-features`), each checked for what it must
# not carry (libpq; SQLite's library), run on its own backend (the users
# list through the JSON API) and given the other backend's URL, which it
# must refuse at start with an error naming the missing feature. The
# SQLite-only build is also one without `sso` (single sign-on): it must
# carry no OpenID Connect or OAuth2 code and refuse providers. The axum
# adapter is compiled the same two ways. Exits non-zero on any of these
# failing.
#
# The PostgreSQL-only build also takes `postgres-bundled` (libpq and OpenSSL
# compiled from source): one build checks both that it carries no SQLite and
# that it links neither the system's libpq nor its OpenSSL, and its run on
# PostgreSQL goes through the bundled libpq. The system libpq is what every
# other build here and the tests use.
#
#   FRONTDESK_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test scripts/check-backend-features.sh
#
# Knobs: FEATURES_PORT (18096).
set -euo pipefail
cd "$(dirname "$0")/.."

admin="${FRONTDESK_TEST_POSTGRES:?set FRONTDESK_TEST_POSTGRES=postgres://…/any_db}"
port="${FEATURES_PORT:-18096}"
bin="${CARGO_TARGET_DIR:-target}/debug/examples/demo"
. scripts/demo-lib.sh

# The users list answered by the running demo.
users_total() {
    local answer
    answer="$(demo_call "http://127.0.0.1:$port/admin/api/v1/users")" || return 1
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])' <<<"$answer"
}

# The demo started with the environment given must stop with `want`.
refuses_to_start() {
    local want="$1" what="$2" log dir
    shift 2
    log="$(mktemp)"
    dir="$(mktemp -d)"
    if env DEMO_ADDR="127.0.0.1:$port" DEMO_DATA="$dir/data" "$@" timeout 60 "$bin" >"$log" 2>&1; then
        echo "the demo started with $what, which its build cannot serve" >&2
        cat "$log" >&2
        exit 1
    fi
    if ! grep -q "$want" "$log"; then
        echo "the demo refused $what without saying \"$want\":" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "refused $what: $(grep -m1 "$want" "$log")"
    rm -rf "$log" "$dir"
}

# The demo given a URL its build has no backend for must stop with `want`.
refuses() {
    refuses_to_start "$2" "$1" DEMO_DATABASE_URL="$1"
}

echo "-- SQLite alone"
cargo build --quiet --locked --example demo --no-default-features --features sqlite
if ldd "$bin" | grep -q 'libpq\.so'; then
    echo "the SQLite-only demo links libpq:" >&2
    ldd "$bin" | grep 'libpq\.so' >&2
    exit 1
fi
echo "links no libpq"
# Built without the `sso` feature too: no OpenID Connect or OAuth2 code in
# the binary, saving an organization's identity provider is refused with the
# reason, and so is a social provider declared at start.
if nm -C "$bin" | grep -Eq 'openidconnect::|oauth2::'; then
    echo "the demo built without sso carries OpenID Connect or OAuth2 code" >&2
    exit 1
fi
echo "carries no OpenID Connect or OAuth2 code"
demo_start "$bin" "$port"
total="$(users_total)"
[ "$total" -ge 1 ] || { echo "the SQLite-only demo listed no users" >&2; exit 1; }
echo "ran on SQLite: GET /admin/api/v1/users answered $total user(s)"
answer="$(curl -sS -X PUT -H "Authorization: Bearer $(demo_key)" -H 'Content-Type: application/json' \
    -w '\n%{http_code}' \
    -d '{"issuer":"https://idp.example","client_id":"id","client_secret":"secret","domains":["example.com"]}' \
    "http://127.0.0.1:$port/admin/api/v1/organizations/notes-team/identity-provider")"
demo_stop
status="${answer##*$'\n'}"
if [ "$status" != 400 ] || ! grep -q "no single sign-on support" <<<"$answer"; then
    echo "saving an identity provider without sso was not refused with the reason:" >&2
    echo "$answer" >&2
    exit 1
fi
echo "refused an organization's identity provider: 400, \"no single sign-on support\""
refuses "${admin%/*}/frontdesk_never_made" "no PostgreSQL support"
refuses_to_start "no single sign-on support" "a social provider" \
    DEMO_OIDC_ISSUER=https://idp.example DEMO_OIDC_CLIENT_ID=id DEMO_OIDC_CLIENT_SECRET=secret
cargo check --quiet --locked -p frontdesk-axum --no-default-features --features sqlite

echo "-- PostgreSQL alone, libpq and OpenSSL from source"
cargo build --quiet --locked --example demo --no-default-features --features postgres-bundled
if nm "$bin" | grep -qw 'sqlite3_open_v2'; then
    echo "the PostgreSQL-only demo carries SQLite's library" >&2
    exit 1
fi
echo "carries no SQLite library"
linked="$(ldd "$bin")"
if grep -Eq 'lib(pq|ssl|crypto)\.so' <<<"$linked"; then
    echo "the postgres-bundled demo links a system library it should carry itself:" >&2
    grep -E 'lib(pq|ssl|crypto)\.so' <<<"$linked" >&2
    exit 1
fi
echo "links no system libpq, libssl or libcrypto"
db="frontdesk_features_$$"
drop_db() { psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>&1 | grep -v NOTICE || true; }
psql "$admin" -qc "CREATE DATABASE $db"
# Dropped when the demo stops (demo-lib's DEMO_ON_EXIT), or on a failure.
DEMO_ON_EXIT=drop_db
demo_start "$bin" "$port" DEMO_DATABASE_URL="${admin%/*}/$db"
total="$(users_total)"
demo_stop
[ "$total" -ge 1 ] || { echo "the PostgreSQL-only demo listed no users" >&2; exit 1; }
echo "ran on PostgreSQL through the bundled libpq: GET /admin/api/v1/users answered $total user(s)"
refuses "sqlite://$(mktemp -d)/never.db" "no SQLite support"
cargo check --quiet --locked -p frontdesk-axum --no-default-features --features postgres
echo "each backend alone: built, ran and refused the other"
