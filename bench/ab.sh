#!/usr/bin/env bash
# A1 between two luas builds: HTTP/1.1 keep-alive throughput of luas
# binary BEFORE against binary AFTER, one worker each on CPU 1, the
# benchmark backend and wrk on CPU 0, in interleaved rounds so machine
# drift hits both alike. For measuring what a change costs on the hot path
# (bench/quick.sh measures one build; bench/run.sh compares with nginx and
# HAProxy).
#
#   git worktree add /tmp/luas-base <rev> && \
#     (cd /tmp/luas-base && cargo build --release --locked --bin luas)
#   cargo build --release --locked --bin luas --example backend
#   BEFORE=/tmp/luas-base/target/release/luas bash bench/ab.sh
#
# The same build under two configs (what a feature costs when it is on):
#   BEFORE=target/release/luas AFTER_CONFIG=bench/mirror.yaml bash bench/ab.sh
#
# Environment: BEFORE (required), AFTER (default target/release/luas),
# BEFORE_CONFIG and AFTER_CONFIG (default bench/quick.yaml), ROUNDS (default
# 5), DURATION (wrk -d, default 8s). A second backend listens on 19002 for
# configs that need one (a mirror's shadow). Prints requests/s per round;
# take the medians. Needs wrk, curl and taskset; loopback only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BEFORE="${BEFORE:?set BEFORE to the luas binary to compare against}"
AFTER="${AFTER:-target/release/luas}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-8s}"
BEFORE_CONFIG="${BEFORE_CONFIG:-bench/quick.yaml}"
AFTER_CONFIG="${AFTER_CONFIG:-bench/quick.yaml}"

taskset -c 0 target/release/examples/backend --ports 19001 --delay-ms 0 --threads 1 \
    >/dev/null 2>&1 &
BACKEND=$!
taskset -c 0 target/release/examples/backend --ports 19002 --delay-ms 0 --threads 1 \
    >/dev/null 2>&1 &
SHADOW=$!
trap 'kill $BACKEND $SHADOW 2>/dev/null' EXIT

# Requests/s of one build ($1) with one config ($2): started afresh, warmed
# up 2 s, measured, stopped.
run() {
    RUST_LOG=warn taskset -c 1 "$1" run --config "$2" --worker-threads 1 \
        >/dev/null 2>&1 &
    local pid=$! tries=0
    until curl -fsS -o /dev/null http://127.0.0.1:18080/ 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "luas did not start" >&2; exit 1; }
        sleep 0.1
    done
    taskset -c 0 wrk -t1 -c64 -d2s http://127.0.0.1:18080/ >/dev/null
    taskset -c 0 wrk -t1 -c64 -d"$DURATION" http://127.0.0.1:18080/ |
        awk '/Requests\/sec/ { print $2 }'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
    echo "round $round: before $(run "$BEFORE" "$BEFORE_CONFIG") after $(run "$AFTER" "$AFTER_CONFIG")"
done
