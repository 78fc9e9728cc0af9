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
        -H 'Content-Type: application/json' -d '{"name": "bench"}' \
        "$api/organizations/notes-team/scim-tokens" 2>/dev/null)"; then break; fi
    answer=""
    if ! kill -0 "$demo" 2>/dev/null; then cat "$work/demo.log" >&2; exit 1; fi
    sleep 0.2
done
[ -n "$answer" ] || { echo "the demo made no SCIM token" >&2; cat "$work/demo.log" >&2; exit 1; }
read -r token base < <("$py" -c 'import json,sys; a=json.load(sys.stdin); print(a["token"], a["scim_base_url"])' <<<"$answer")

"$py" scripts/scim-bench.py "$base" "$token" "$@"
