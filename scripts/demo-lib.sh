# Shared by the scripts that run the demo host app and talk to it over HTTP.
# Source it from the workspace root:
#
#   . scripts/demo-lib.sh
#   demo_start "$bin" "$port" DEMO_SAMPLE_DATA=1
#   demo_call "http://127.0.0.1:$port/admin/api/v1/users" >users.json
#
# demo_start BIN PORT [NAME=value ...]
#     Starts BIN in the background on 127.0.0.1:PORT with a scratch data
#     folder and the file it writes its staff API key to, both in DEMO_WORK
#     (a new temporary folder), and the environment given. Its output goes
#     to $DEMO_WORK/demo.log. On exit the demo is stopped, then DEMO_ON_EXIT
#     runs if the caller set it (e.g. to drop a scratch database), then the
#     folder is removed.
# demo_call CURL_ARGS...
#     curl with the demo's API key as the bearer token, tried every 0.2 s
#     until the demo has written the key and the request succeeds: its body
#     on stdout. Fails, showing the demo's log, if the demo exits or has not
#     answered after DEMO_WAIT_TRIES tries (300: a minute).
# demo_key
#     The API key (after a demo_call has succeeded).

DEMO_WORK=""
DEMO_PID=""

demo_stop() {
    if [ -n "$DEMO_PID" ]; then
        kill "$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
        DEMO_PID=""
    fi
    if [ -n "${DEMO_ON_EXIT:-}" ]; then
        eval "$DEMO_ON_EXIT" || true
    fi
    if [ -n "$DEMO_WORK" ]; then
        rm -rf "$DEMO_WORK"
    fi
}

demo_start() {
    local bin="$1" port="$2"
    shift 2
    DEMO_WORK="$(mktemp -d)"
    trap demo_stop EXIT
    env DEMO_ADDR="127.0.0.1:$port" \
        DEMO_DATA="$DEMO_WORK/data" \
        DEMO_API_KEY_FILE="$DEMO_WORK/api.key" \
        "$@" \
        "$bin" >"$DEMO_WORK/demo.log" 2>&1 &
    DEMO_PID=$!
}

demo_key() {
    cat "$DEMO_WORK/api.key"
}

demo_call() {
    local key
    for _ in $(seq 1 "${DEMO_WAIT_TRIES:-300}"); do
        key="$(cat "$DEMO_WORK/api.key" 2>/dev/null || true)"
        if [ -n "$key" ] && curl -fsS -H "Authorization: Bearer $key" "$@" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$DEMO_PID" 2>/dev/null; then
            echo "the demo stopped:" >&2
            cat "$DEMO_WORK/demo.log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "the demo did not answer curl $* in time:" >&2
    cat "$DEMO_WORK/demo.log" >&2
    return 1
}
