#!/usr/bin/env bash
# Fuzzes the JSON admin API against its own OpenAPI document: builds and starts
# the api_server example on a fresh SQLite file, takes the staff-owner API key
# it prints, runs schemathesis (all checks, bounded in examples and time) and
# exits non-zero when schemathesis reports a failure.
#
#   pip install schemathesis    # once
#   scripts/schemathesis.sh
#
# Knobs: FUZZ_PORT (18089), FUZZ_EXAMPLES per operation (25), FUZZ_SECONDS (300),
# FUZZ_SEED (random), SCHEMATHESIS (the `schemathesis` on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${FUZZ_PORT:-18089}"
examples="${FUZZ_EXAMPLES:-25}"
seconds="${FUZZ_SECONDS:-300}"
st="${SCHEMATHESIS:-schemathesis}"
command -v "$st" >/dev/null || { echo "schemathesis not found: pip install schemathesis" >&2; exit 2; }

cargo build --quiet --example api_server
bin="${CARGO_TARGET_DIR:-target}/debug/examples/api_server"

work="$(mktemp -d)"
"$bin" "127.0.0.1:$port" "sqlite://$work/api.db" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

base="http://127.0.0.1:$port/admin/api/v1"
for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$base/openapi.json" 2>/dev/null; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
    sleep 0.2
done
key="$(sed -n 's/^FRONTDESK_API_KEY=//p' "$work/server.log")"
if [ -z "$key" ]; then
    echo "the server printed no API key" >&2
    cat "$work/server.log" >&2
    exit 1
fi

args=(run "$base/openapi.json"
    --header "Authorization: Bearer $key"
    --max-examples "$examples"
    --max-time "$seconds"
    --workers 1
    --no-color
    --generation-database none
    --request-timeout 10
    # An upload is a CSV file whose validity (header, encoding) the document
    # cannot describe, so random text is rightly refused: the integration
    # tests cover /import instead.
    --exclude-operation-id import_users)
if [ -n "${FUZZ_SEED:-}" ]; then args+=(--seed "$FUZZ_SEED"); fi
# From the scratch folder, so that schemathesis' own files stay out of the tree.
(cd "$work" && "$st" "${args[@]}")
