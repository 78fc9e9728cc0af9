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

. scripts/demo-lib.sh
demo_start "$bin" "$port" DEMO_DATABASE_URL="${SCIM_DATABASE_URL:-}"
api="http://127.0.0.1:$port/admin/api/v1"
answer="$(demo_call -X POST -H 'Content-Type: application/json' -d '{"name": "scim2-tester"}' \
    "$api/organizations/notes-team/scim-tokens")" || { echo "the demo made no SCIM token" >&2; exit 1; }
read -r token base < <("$py" -c 'import json,sys; a=json.load(sys.stdin); print(a["token"], a["scim_base_url"])' <<<"$answer")

"$py" scripts/scim-conformance.py "$base" "$token"
