#!/usr/bin/env bash
# Runs the SCIM conformance suite scim2-tester (python-scim) against the
# running demo: builds the demo, starts it on a scratch data folder with a
# staff-owner API key written to a file, makes a SCIM token for the demo's
# organization through the API, runs every check, stops the demo, and exits
# non-zero on any failure (or a skip not justified in the README).
#
#   python3 -m venv .ci/scim-venv
#   .ci/scim-venv/bin/pip install 'scim2-tester[httpx2]==0.5.2' 'scim2-client==0.13.2' 'scim2-models==0.12.3'
#   SCIM_PYTHON=.ci/scim-venv/bin/python scripts/scim-conformance.sh
#
# Knobs: SCIM_PORT (18091), SCIM_DATABASE_URL (a scratch postgres://…
# database instead of SQLite; it is written to), SCIM_PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${SCIM_PORT:-18091}"
py="${SCIM_PYTHON:-python3}"

cargo build --quiet --example demo
bin="${CARGO_TARGET_DIR:-target}/debug/examples/demo"

work="$(mktemp -d)"
DEMO_ADDR="127.0.0.1:$port" \
    DEMO_DATA="$work/data" \
    DEMO_DATABASE_URL="${SCIM_DATABASE_URL:-}" \
    DEMO_API_KEY_FILE="$work/api.key" \
    "$bin" >"$work/demo.log" 2>&1 &
demo=$!
cleanup() {
    kill "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

api="http://127.0.0.1:$port/admin/api/v1"
answer=""
for _ in $(seq 1 150); do
    key="$(cat "$work/api.key" 2>/dev/null || true)"
    if [ -n "$key" ] && answer="$(curl -fsS -X POST -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -d '{"name": "scim2-tester"}' \
        "$api/organizations/notes-team/scim-tokens" 2>/dev/null)"; then break; fi
    answer=""
    if ! kill -0 "$demo" 2>/dev/null; then cat "$work/demo.log" >&2; exit 1; fi
    sleep 0.2
done
if [ -z "$answer" ]; then
    echo "the demo made no SCIM token" >&2
    cat "$work/demo.log" >&2
    exit 1
fi
read -r token base < <("$py" -c 'import json,sys; a=json.load(sys.stdin); print(a["token"], a["scim_base_url"])' <<<"$answer")

"$py" scripts/scim-conformance.py "$base" "$token"
