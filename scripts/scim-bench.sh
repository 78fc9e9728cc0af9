#!/usr/bin/env bash
# Times a directory's first sync through SCIM against the demo: 10,000 users,
# then 100 groups of 100 members (scripts/scim-bench.py), on a scratch data
# folder (SQLite) or SCIM_DATABASE_URL (a scratch postgres://… database).
#
#   SCIM_PYTHON=.ci/scim-venv/bin/python scripts/scim-bench.sh [USERS GROUPS MEMBERS WORKERS]
#
# Knobs: SCIM_PORT (18092), SCIM_PROFILE (release; `dev` for a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${SCIM_PORT:-18092}"
py="${SCIM_PYTHON:-python3}"
profile="${SCIM_PROFILE:-release}"

cargo build --quiet --example demo --profile "$profile"
dir="$profile"; [ "$profile" = dev ] && dir=debug
bin="${CARGO_TARGET_DIR:-target}/$dir/examples/demo"

. scripts/demo-lib.sh
demo_start "$bin" "$port" DEMO_DATABASE_URL="${SCIM_DATABASE_URL:-}"
api="http://127.0.0.1:$port/admin/api/v1"
answer="$(demo_call -X POST -H 'Content-Type: application/json' -d '{"name": "bench"}' \
    "$api/organizations/notes-team/scim-tokens")" || { echo "the demo made no SCIM token" >&2; exit 1; }
read -r token base < <("$py" -c 'import json,sys; a=json.load(sys.stdin); print(a["token"], a["scim_base_url"])' <<<"$answer")

"$py" scripts/scim-bench.py "$base" "$token" "$@"
