#!/usr/bin/env bash
# Generates API clients from the document the running demo serves and drives
# the API through the generated Python client: builds the demo, starts it on a
# scratch data folder (sample users) with a staff-owner API key written to a
# file, fetches /admin/api/v1/openapi.json, generates a Python client
# (openapi-python-client) and TypeScript types (openapi-typescript, checked by
# compiling a file that uses them), then runs scripts/client_workflow.py, which
# calls the API only through the generated client. Fails when a generator
# drops an operation or a schema, or when a step of the workflow fails.
#
#   python3 -m venv .ci/clients-venv
#   .ci/clients-venv/bin/pip install 'openapi-python-client==0.29.1' 'python-dateutil==2.9.0.post0'
#   npm install --prefix .ci/clients openapi-typescript@7.13.0 typescript@5.9.3
#   CLIENTS_VENV=.ci/clients-venv CLIENTS_NODE=.ci/clients scripts/generated-clients.sh
#
# Knobs: CLIENTS_PORT (18093), CLIENTS_VENV, CLIENTS_NODE (folders as above).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${CLIENTS_PORT:-18093}"
venv="$(cd "${CLIENTS_VENV:-.ci/clients-venv}" && pwd)"
node_dir="$(cd "${CLIENTS_NODE:-.ci/clients}" && pwd)"
export PATH="$venv/bin:$PATH"
root="$PWD"

cargo build --quiet --example demo
bin="${CARGO_TARGET_DIR:-target}/debug/examples/demo"

. scripts/demo-lib.sh
demo_start "$bin" "$port" DEMO_SAMPLE_DATA=1
work="$DEMO_WORK"
base="http://127.0.0.1:$port/admin/api/v1"
demo_call -o "$work/openapi.json" "$base/openapi.json" || {
    echo "the demo served no OpenAPI document (or wrote no API key)" >&2
    exit 1
}
key="$(demo_key)"

echo "== Python client (openapi-python-client)"
(cd "$work" && openapi-python-client generate --path openapi.json \
    --output-path py/frontdesk_client --meta none) 2>&1 | tee "$work/python-gen.log"
# The generator carries on past what it cannot read; these are the lines it
# prints when it leaves an operation or a schema out of the client.
if grep -E "will not be generated|Unable to process schema|Cannot parse response|Failure to process" \
    "$work/python-gen.log"; then
    echo "openapi-python-client left part of the API out (above)" >&2
    exit 1
fi

echo "== TypeScript types (openapi-typescript)"
"$node_dir/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/frontdesk-api.d.ts"
cp scripts/client_types_check.ts "$work/check.ts"
(cd "$work" && "$node_dir/node_modules/.bin/tsc" --strict --noEmit --target es2020 \
    --moduleResolution node check.ts)
echo "the TypeScript types compile with a file that uses them"

echo "== workflow through the generated Python client"
# The demo prints its staff owner's one-time password on its first start.
admin_email="$(sed -n 's/^ *email: *//p' "$work/demo.log" | head -n 1)"
admin_password="$(sed -n 's/^ *password: *\([^ ]*\).*/\1/p' "$work/demo.log" | head -n 1)"
cookie="$(python -c 'import json,sys; print(json.load(sys.stdin)["components"]["securitySchemes"]["session"]["name"])' <"$work/openapi.json")"
PYTHONPATH="$work/py" FRONTDESK_API="$base" FRONTDESK_API_KEY="$key" \
    FRONTDESK_ADMIN_EMAIL="$admin_email" FRONTDESK_ADMIN_PASSWORD="$admin_password" \
    FRONTDESK_SESSION_COOKIE="$cookie" \
    python "$root/scripts/client_workflow.py"
