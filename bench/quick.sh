#!/usr/bin/env bash
# The single-core throughput check: how many requests per second one luas
# worker thread forwards, and what it adds to latency, against a trivial
# backend on the same machine.
#
#   bash bench/quick.sh            # 3 rounds (bench/ab.sh compares two builds)
#   ROUNDS=5 bash bench/quick.sh
#
# Layout (needs 2 CPUs, loopback only):
#   CPU 0: the benchmark backend (examples/backend.rs, one thread) on
#          127.0.0.1:19001, and wrk (one thread, 64 connections)
#   CPU 1: luas with one worker thread, config bench/quick.yaml
#          (listener 127.0.0.1:18080, admin 127.0.0.1:19901)
#
# Each round runs wrk straight at the backend ("direct"), then through luas;
# the rounds interleave so drift (thermal, noisy neighbours) hits both alike.
# luas's CPU share is its utime+stime (from /proc/PID/stat) over the run
# divided by the wall time; 100% means the one worker was saturated. "other
# on CPU 1" is what everything else (and hypervisor steal) took of luas's
# CPU meanwhile: above a few percent, the luas numbers are disturbed.
#
# Environment: ROUNDS (default 3), DURATION (wrk -d, default 10s),
# CONNECTIONS (wrk -c, default 64), WARMUP (unmeasured run through luas
# first, default 2s; 0 to skip). wrk output and logs go to
# bench/results/quick-<time>/ (git-ignored).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
WARMUP="${WARMUP:-2s}"

BACKEND_ADDR=127.0.0.1:19001
PROXY_ADDR=127.0.0.1:18080
ADMIN_ADDR=127.0.0.1:19901
BACKEND_CPU=0
PROXY_CPU=1

# ---- helpers ----

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

die() {
    echo "error: $*" >&2
    exit 1
}

# Seconds in a wrk duration such as 10s, 2m or 30.
seconds_of() {
    awk -v d="$1" 'BEGIN {
        n = d + 0
        if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600
        printf "%d", (n > 0 && n < 1) ? 1 : n
    }'
}

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat")" || return 1
    # Fields after the ")" that ends the command name: state is field 3, so
    # utime (14) and stime (15) are the 12th and 13th after it.
    echo "${stat##*) }" | awk '{ print $12 + $13 }'
}

# "busy total" clock ticks of CPU $1 since boot, from /proc/stat; busy
# includes steal (time the hypervisor gave to someone else).
cpu_busy_total() {
    awk -v cpu="cpu$1" '$1 == cpu {
        busy = $2 + $3 + $4 + $7 + $8 + $9
        print busy, busy + $5 + $6
    }' /proc/stat
}

now() {
    date +%s.%N
}

# Polls until URL answers 2xx, for at most $2 seconds.
wait_for() {
    local url="$1" limit="$2" waited=0
    until curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
        if [ "$waited" -ge $((limit * 10)) ]; then
            return 1
        fi
    done
}

# Latency in wrk's units (123.45us, 1.20ms, 2.00s, 1.00m) to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n *= 1
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

# Median of numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# ---- set-up ----

[ "$(uname -s)" = Linux ] || die "this benchmark needs Linux (/proc and taskset)"
[ "$(nproc)" -ge 2 ] || die "this benchmark pins to CPUs 0 and 1 and needs at least 2"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "==> building luas and the benchmark backend (release)"
cargo build --locked --release
cargo build --locked --release --example backend

for address in "$BACKEND_ADDR" "$PROXY_ADDR" "$ADMIN_ADDR"; do
    if curl -s --max-time 1 -o /dev/null "http://$address/" 2>/dev/null; then
        die "something already answers on $address; stop it first"
    fi
done

RESULTS="bench/results/quick-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"

BACKEND_PID=""
PROXY_PID=""
cleanup() {
    local pid
    for pid in "$PROXY_PID" "$BACKEND_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "$PROXY_PID" "$BACKEND_PID"; do
        if [ -n "$pid" ]; then
            # Bounded: luas drains for at most its grace period (10 s default).
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> starting the backend on $BACKEND_ADDR (CPU $BACKEND_CPU) and luas on $PROXY_ADDR (CPU $PROXY_CPU)"
taskset -c "$BACKEND_CPU" target/release/examples/backend \
    --ports "${BACKEND_ADDR##*:}" --delay-ms 0 --threads 1 >"$RESULTS/backend.log" 2>&1 &
BACKEND_PID=$!
RUST_LOG="${RUST_LOG:-warn}" taskset -c "$PROXY_CPU" target/release/luas run \
    --config bench/quick.yaml --worker-threads 1 >"$RESULTS/luas.log" 2>&1 &
PROXY_PID=$!

wait_for "http://$BACKEND_ADDR/" 10 || die "the backend did not answer within 10 s; see $RESULTS/backend.log"
wait_for "http://$PROXY_ADDR/" 10 || die "luas did not answer within 10 s; see $RESULTS/luas.log"
wait_for "http://$ADMIN_ADDR/ready" 10 || die "luas is not ready within 10 s; see $RESULTS/luas.log"

WRK_SECONDS="$(seconds_of "$DURATION")"
# wrk stops itself after DURATION; the timeout only guards against a hang.
WRK_LIMIT=$((WRK_SECONDS + 30))

# Runs wrk against $2 and writes its output to $1.
run_wrk() {
    local output="$1" address="$2" duration="${3:-$DURATION}"
    timeout --signal=INT --kill-after=5 "$WRK_LIMIT" \
        taskset -c "$BACKEND_CPU" wrk -t1 -c"$CONNECTIONS" -d"$duration" --latency \
        "http://$address/" >"$output" 2>&1 || {
        cat "$output" >&2
        die "wrk against $address failed"
    }
}

# Prints "requests/s p50_ms p99_ms errors" from a wrk output file.
parse_wrk() {
    local file="$1" rps p50 p99 errors
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$file")"
    p50="$(awk '$1 == "50%" { print $2 }' "$file")"
    p99="$(awk '$1 == "99%" { print $2 }' "$file")"
    if [ -z "$rps" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
        cat "$file" >&2
        die "cannot parse wrk output in $file"
    fi
    errors="$(awk '
        /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { n += $5 }
        END { print n + 0 }' "$file")"
    echo "$rps $(to_ms "$p50") $(to_ms "$p99") $errors"
}

if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    echo "==> warm-up: $WARMUP through luas (not measured)"
    run_wrk "$RESULTS/warmup.txt" "$PROXY_ADDR" "$WARMUP"
fi

CLK_TCK="$(getconf CLK_TCK)"
declare -a DIRECT_RPS DIRECT_P50 DIRECT_P99 PROXY_RPS PROXY_P50 PROXY_P99 PROXY_CPU_SHARE OTHER_SHARE

header() {
    echo "| round | target | requests/s | p50 (ms) | p99 (ms) | luas CPU | other on CPU $PROXY_CPU | errors |"
    echo "|------:|--------|-----------:|---------:|---------:|---------:|---------:|-------:|"
}

echo "==> load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> $ROUNDS round(s): wrk -t1 -c$CONNECTIONS -d$DURATION --latency, direct then through luas"
for round in $(seq "$ROUNDS"); do
    run_wrk "$RESULTS/round$round-direct.txt" "$BACKEND_ADDR"
    result="$(parse_wrk "$RESULTS/round$round-direct.txt")"
    read -r rps p50 p99 errors <<<"$result"
    DIRECT_RPS+=("$rps") DIRECT_P50+=("$p50") DIRECT_P99+=("$p99")
    direct_row="| $round | direct | $rps | $p50 | $p99 | - | - | $errors |"

    kill -0 "$PROXY_PID" 2>/dev/null || die "luas exited; see $RESULTS/luas.log"
    ticks_before="$(cpu_ticks "$PROXY_PID")"
    read -r busy_before total_before <<<"$(cpu_busy_total "$PROXY_CPU")"
    started="$(now)"
    run_wrk "$RESULTS/round$round-luas.txt" "$PROXY_ADDR"
    ended="$(now)"
    ticks_after="$(cpu_ticks "$PROXY_PID")"
    read -r busy_after total_after <<<"$(cpu_busy_total "$PROXY_CPU")"
    result="$(parse_wrk "$RESULTS/round$round-luas.txt")"
    read -r rps p50 p99 errors <<<"$result"
    cpu="$(awk -v b="$ticks_before" -v a="$ticks_after" -v s="$started" -v e="$ended" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f", 100 * (a - b) / hz / (e - s) }')"
    other="$(awk -v b="$busy_before" -v a="$busy_after" -v tb="$total_before" -v ta="$total_after" \
        -v lb="$ticks_before" -v la="$ticks_after" \
        'BEGIN { o = (ta > tb) ? 100 * ((a - b) - (la - lb)) / (ta - tb) : 0; printf "%.0f", (o < 0) ? 0 : o }')"
    PROXY_RPS+=("$rps") PROXY_P50+=("$p50") PROXY_P99+=("$p99") PROXY_CPU_SHARE+=("$cpu") OTHER_SHARE+=("$other")

    echo
    echo "Round $round"
    echo
    header
    echo "$direct_row"
    echo "| $round | luas | $rps | $p50 | $p99 | $cpu% | $other% | $errors |"
done

m() { printf '%s\n' "$@" | median; }
d_rps="$(m "${DIRECT_RPS[@]}")" d_p50="$(m "${DIRECT_P50[@]}")" d_p99="$(m "${DIRECT_P99[@]}")"
p_rps="$(m "${PROXY_RPS[@]}")" p_p50="$(m "${PROXY_P50[@]}")" p_p99="$(m "${PROXY_P99[@]}")"
p_cpu="$(m "${PROXY_CPU_SHARE[@]}")" p_other="$(m "${OTHER_SHARE[@]}")"

{
    echo
    echo "Medians of $ROUNDS round(s) (wrk -t1 -c$CONNECTIONS -d$DURATION; backend and wrk on CPU $BACKEND_CPU, luas --worker-threads 1 on CPU $PROXY_CPU)"
    echo
    echo "| target | requests/s | p50 (ms) | p99 (ms) | luas CPU | other on CPU $PROXY_CPU |"
    echo "|--------|-----------:|---------:|---------:|---------:|---------:|"
    printf '| direct | %.0f | %.3f | %.3f | - | - |\n' "$d_rps" "$d_p50" "$d_p99"
    printf '| luas | %.0f | %.3f | %.3f | %.0f%% | %.0f%% |\n' "$p_rps" "$p_p50" "$p_p99" "$p_cpu" "$p_other"
    echo
    awk -v dr="$d_rps" -v pr="$p_rps" -v d50="$d_p50" -v p50="$p_p50" -v d99="$d_p99" -v p99="$p_p99" 'BEGIN {
        printf "Through luas: %.0f%% of direct throughput; p50 %+.3f ms, p99 %+.3f ms.\n",
            100 * pr / dr, p50 - d50, p99 - d99
    }'
} | tee "$RESULTS/summary.md"
echo
echo "wrk outputs and logs: $RESULTS/"
