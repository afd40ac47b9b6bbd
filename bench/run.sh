#!/usr/bin/env bash
# The side-by-side benchmark: luas, nginx and haproxy under the same load,
# each with one worker on CPU 1, loopback only. Writes docs/benchmarks.md and
# docs/benchmarks.png.
#
#   bash bench/run.sh                 # the full benchmark, 3 rounds (~20 min)
#   ROUNDS=5 bash bench/run.sh        # more rounds
#   QUICK=1 bash bench/run.sh         # a check of the script: 1 round, 3 s runs,
#                                     # 1000 idle connections, report in the
#                                     # results directory (docs/ untouched)
#
# On a Debian machine with Rust it installs what is missing (nginx, haproxy,
# wrk, nghttp2-client for h2load, python3-matplotlib, curl, iproute2, procps,
# util-linux; oha with `cargo install --root bench/.tools`), builds luas and
# the benchmark backend (examples/backend.rs) in release mode, then runs:
#
#   A1  throughput, HTTP/1.1 keep-alive   wrk -t1 -c64 -dDs --latency
#   A2  throughput, h2c to the proxy      h2load -c8 -m8 -D D (per-request log for percentiles)
#   A3  a new connection per request      wrk -t1 -c64 -dDs --latency -H 'Connection: close'
#   L   added latency at 500 req/s        oha -q 500, straight at a backend and through each proxy
#   B   one slow replica (0, 0, 50 ms)    oha -q 500 with latency correction; each backend's share
#   C   a replica dies 3 s into the run   oha -q 500, backends at 0 ms and at 20 ms; client failures
#   D   10 000 idle keep-alive clients    bench/idle_conns.py; proxy RSS before and after
#
# After the report, bench/fuzz.sh fuzzes luas's HTTP/1.1 codec for
# FUZZ_SECONDS per target (not part of the report; its lines go to the
# results directory as fuzz.txt). It needs the nightly toolchain: without
# it, or with FUZZ_SECONDS=0, a skip line is printed instead, and findings
# are reported without failing the benchmark.
#
# Layout: CPU 1 runs the proxy (luas --worker-threads 1, nginx
# worker_processes 1, haproxy nbthread 1); CPU 0 runs the load generator and
# the backends (examples/backend.rs, one thread). Every proxy is started
# afresh for every run, warmed up (WARMUP seconds of the same load, not
# measured), measured, and stopped. Within a round the proxies take turns
# scenario by scenario, and each round starts with the next one (round 1
# luas, nginx, haproxy; round 2 nginx, haproxy, luas; ...): on the shared VM
# the proxy that ran first in a scenario was measured faster, whichever it
# was. Every figure in the report is the median of the rounds, with min-max. Configs: bench/luas-bench.yaml,
# bench/nginx.conf, bench/haproxy.cfg (one port per variant).
#
# Environment:
#   ROUNDS      rounds (default 3; QUICK: 1)
#   DURATION    seconds of each measured run (default 10; QUICK: 3)
#   WARMUP      seconds of warm-up before each measured run (default 2; QUICK: 1)
#   RATE        requests/s of the fixed-rate runs (default 500)
#   IDLE_CONNS  idle connections in D (default 10000; QUICK: 1000)
#   KILL_AT     second of the C run at which a backend is killed (default 3; QUICK: 1)
#   DISTURB_PCT a measured run during which processes outside the benchmark
#               used more than this % of one CPU is redone (default 5) ...
#   MAX_REDO    ... at most this many times (default 2; the last try is kept
#               and flagged), each after waiting up to QUIET_WAIT s (default
#               60) for the machine to calm down
#   SCENARIOS   which to run, of "A1 A2 A3 L B C D" (default: all)
#   PROXIES     which to run, of "luas nginx haproxy" (default: all)
#   REPORT_DIR  where benchmarks.md and benchmarks.png go (default docs/;
#               QUICK: the results directory)
#   FUZZ_SECONDS seconds of fuzzing per target at the end (default 60;
#               QUICK: 0, skipped; the first build takes about 15 minutes)
# Raw tool output, logs and per-run facts go to bench/results/<time>/
# (git-ignored); `python3 bench/report.py bench/results/<time> OUT_DIR`
# rebuilds the report from them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
    ROUNDS="${ROUNDS:-1}" DURATION="${DURATION:-3}" WARMUP="${WARMUP:-1}"
    IDLE_CONNS="${IDLE_CONNS:-1000}" KILL_AT="${KILL_AT:-1}" FUZZ_SECONDS="${FUZZ_SECONDS:-0}"
else
    ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}"
    IDLE_CONNS="${IDLE_CONNS:-10000}" KILL_AT="${KILL_AT:-3}" FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
fi
RATE="${RATE:-500}"
DISTURB_PCT="${DISTURB_PCT:-5}"
MAX_REDO="${MAX_REDO:-2}"
QUIET_WAIT="${QUIET_WAIT:-60}"
SCENARIOS="${SCENARIOS:-A1 A2 A3 L B C D}"
PROXIES="${PROXIES:-luas nginx haproxy}"
OHA_VERSION="${OHA_VERSION:-1.16.0}"

LOAD_CPU=0
PROXY_CPU=1
BACKEND_PORTS=(19101 19102 19103)
LUAS_ADMIN=18190
# Listener of each proxy for each variant: base + offset, with offsets
# 0 = HTTP/1.1 (A1, A3, L, D), 1 = h2c (A2), 2 = B load-aware balancer,
# 3 = B round-robin, 4 = C with retries. See the three config files.
declare -A PORT_BASE=([luas]=18180 [nginx]=18280 [haproxy]=18380)

# ---- helpers ----

die() {
    echo "error: $*" >&2
    exit 1
}

log() {
    echo "==> $*"
}

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

port_of() {
    echo $((PORT_BASE[$1] + $2))
}

now() {
    date +%s.%N
}

# True while process $1 exists and is not a zombie.
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# Every descendant of process $1 (children first, then theirs).
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

# Every process this script started in the background, for the EXIT trap.
STARTED=()
LAST_PID=""
spawn() {
    "$@" &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
}

# Stops process $1 (and what it started): SIGTERM, then SIGKILL after $2
# seconds (default 5).
stop_pid() {
    local pid="$1" grace="${2:-5}" kids kid
    [ -n "$pid" ] || return 0
    if alive "$pid"; then
        kids="$(descendants "$pid")"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((grace * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "warning: process $pid did not stop within ${grace}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        for kid in $kids; do
            if alive "$kid"; then
                kill -KILL "$kid" 2>/dev/null || true
            fi
        done
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local i
    trap - EXIT INT TERM
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED[i]}" 3
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls until URL answers 2xx, for at most $2 seconds.
wait_http() {
    local url="$1" limit="$2" waited=0
    until curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
        [ "$waited" -lt $((limit * 10)) ] || return 1
    done
}

# utime + stime of processes $@ (all their threads), in clock ticks.
cpu_ticks() {
    local pid stat total=0
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        # After the ")" that ends the command name, state is the first field,
        # utime and stime the 12th and 13th.
        total=$((total + $(echo "${stat##*) }" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# VmRSS of processes $@, summed, in KiB.
rss_kib() {
    local pid total=0 kib
    for pid in "$@"; do
        kib="$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null)" || kib=0
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

# "busy irq total" clock ticks of CPU $1 since boot (/proc/stat): busy is
# user+nice+system+steal (processes and the hypervisor), irq is irq+softirq
# (where the loopback TCP stack does much of its work). Without
# CONFIG_IRQ_TIME_ACCOUNTING, softirq work done while a process runs is also
# in that process's stime, so the proxy's ticks are compared with busy+irq.
cpu_stat() {
    awk -v cpu="cpu$1" '$1 == cpu {
        busy = $2 + $3 + $4 + $9
        print busy, $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
    }' /proc/stat
}

# Writes "key value" facts about the current run.
fact() {
    echo "$1 $2" >>"$RUNDIR/facts.txt"
}

# Runs a command pinned to the load CPU, records it in cmd.txt, and bounds it
# in time ($1 seconds); its stdout goes to $2.
load_cmd() {
    local limit="$1" out="$2"
    shift 2
    printf '%q ' "$@" >>"$RUNDIR/cmd.txt"
    echo >>"$RUNDIR/cmd.txt"
    timeout --signal=INT --kill-after=5 "$limit" taskset -c "$LOAD_CPU" "$@" >"$out" 2>"$out.stderr"
}

# Load generators; $1 = output file, $2 = seconds, $3 = URL.
run_wrk() {
    local out="$1" seconds="$2" url="$3"
    shift 3
    load_cmd $((seconds + 30)) "$out" wrk -t1 -c64 -d"${seconds}s" --latency "$@" "$url" || {
        cat "$out" "$out.stderr" >&2
        die "wrk against $url failed; see $out"
    }
}

run_h2load() {
    local out="$1" seconds="$2" url="$3"
    shift 3
    load_cmd $((seconds + 30)) "$out" h2load -c8 -m8 -D "$seconds" "$@" "$url" || {
        cat "$out" "$out.stderr" >&2
        die "h2load against $url failed; see $out"
    }
}

run_oha() {
    local out="$1" seconds="$2" url="$3"
    load_cmd $((seconds + 30)) "$out.txt" "$OHA" -q "$RATE" -c 50 -z "${seconds}s" -t 5s \
        --latency-correction -w --no-tui --worker-threads 1 --output-format json -o "$out" "$url" || {
        cat "$out.txt" "$out.txt.stderr" >&2
        die "oha against $url failed"
    }
}

# Runs "$@" (a load) and records the proxy's CPU use over it, and the CPU
# that processes outside this benchmark used meanwhile (bench/foreign_cpu.py):
# above DISTURB_PCT of one CPU, DISTURBED is set and the run is redone.
DISTURBED=0
measure() {
    local pids t0 t1 ticks0 ticks1 busy0 busy1 irq0 irq1 total0 total1 wall foreign steal top
    # shellcheck disable=SC2207
    pids=($(proxy_pids))
    "$PY" bench/foreign_cpu.py snapshot $$ "$RUNDIR/foreign-before.json"
    ticks0="$(cpu_ticks "${pids[@]}")"
    read -r busy0 irq0 total0 <<<"$(cpu_stat "$PROXY_CPU")"
    t0="$(now)"
    "$@"
    t1="$(now)"
    ticks1="$(cpu_ticks "${pids[@]}")"
    read -r busy1 irq1 total1 <<<"$(cpu_stat "$PROXY_CPU")"
    read -r foreign steal top <<<"$("$PY" bench/foreign_cpu.py since $$ "$RUNDIR/foreign-before.json")"
    wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    fact wall_s "$wall"
    fact proxy_ticks $((ticks1 - ticks0))
    fact cpu1_busy_ticks $((busy1 - busy0))
    fact cpu1_irq_ticks $((irq1 - irq0))
    fact cpu1_total_ticks $((total1 - total0))
    fact clk_tck "$CLK_TCK"
    fact foreign_ticks "$foreign"
    fact foreign_top "$top"
    fact steal_ticks "$steal"
    DISTURBED=0
    if awk -v f="$foreign" -v w="$wall" -v hz="$CLK_TCK" -v max="$DISTURB_PCT" \
        'BEGIN { exit !(100 * f / hz / w > max) }'; then
        DISTURBED=1
        DISTURB_INFO="$(awk -v f="$foreign" -v w="$wall" -v hz="$CLK_TCK" \
            'BEGIN { printf "%.0f%%", 100 * f / hz / w }') of a CPU, busiest: $top"
    fi
}

# Waits (at most QUIET_WAIT seconds) until processes outside the benchmark
# use less than DISTURB_PCT of a CPU over 2 s.
wait_quiet() {
    local waited=0 foreign
    while :; do
        "$PY" bench/foreign_cpu.py snapshot $$ "$RESULTS/quiet.json"
        sleep 2
        read -r foreign _ _ <<<"$("$PY" bench/foreign_cpu.py since $$ "$RESULTS/quiet.json")"
        if awk -v f="$foreign" -v hz="$CLK_TCK" -v max="$DISTURB_PCT" 'BEGIN { exit !(100 * f / hz / 2 <= max) }'; then
            return 0
        fi
        waited=$((waited + 2))
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "warning: the machine is still busy after ${QUIET_WAIT}s; going on" >&2
            return 0
        fi
    done
}

# Runs one measurement ("$@": a run_* function), and again (up to
# MAX_REDO times, after waiting for quiet) while other processes disturbed
# it; the disturbed attempts are kept under RESULTS/disturbed/.
redo() {
    local attempt=0 name
    while :; do
        "$@"
        [ "$DISTURBED" = 1 ] || return 0
        attempt=$((attempt + 1))
        name="$(echo "${RUNDIR#"$RESULTS"/}" | tr / -)-$attempt"
        if [ "$attempt" -gt "$MAX_REDO" ]; then
            echo "warning: $name disturbed by other processes ($DISTURB_INFO); kept, as it was the last try" >&2
            fact disturbed 1
            return 0
        fi
        echo "    disturbed by other processes ($DISTURB_INFO); redoing it" >&2
        mkdir -p "$RESULTS/disturbed"
        mv "$RUNDIR" "$RESULTS/disturbed/$name"
        echo "$name $DISTURB_INFO" >>"$RESULTS/disturbed/list.txt"
        wait_quiet
    done
}

# ---- backends ----

BACKEND_PIDS=()

# One backend process serving all three ports, delays "D1,D2,D3" in ms.
start_backends() {
    local ports port
    ports="$(IFS=,; echo "${BACKEND_PORTS[*]}")"
    spawn taskset -c "$LOAD_CPU" target/release/examples/backend \
        --ports "$ports" --delays "$1" --threads 1 >>"$RESULTS/backends.log" 2>&1
    BACKEND_PIDS=("$LAST_PID")
    for port in "${BACKEND_PORTS[@]}"; do
        wait_http "http://127.0.0.1:$port/" 10 || die "the backend did not answer on $port; see $RESULTS/backends.log"
    done
}

# One backend process per port (so that one can be killed), each at delay $1 ms.
start_backends_split() {
    local port
    BACKEND_PIDS=()
    for port in "${BACKEND_PORTS[@]}"; do
        spawn taskset -c "$LOAD_CPU" target/release/examples/backend \
            --ports "$port" --delay-ms "$1" --threads 1 >>"$RESULTS/backends.log" 2>&1
        BACKEND_PIDS+=("$LAST_PID")
    done
    for port in "${BACKEND_PORTS[@]}"; do
        wait_http "http://127.0.0.1:$port/" 10 || die "the backend did not answer on $port; see $RESULTS/backends.log"
    done
}

stop_backends() {
    local pid
    for pid in "${BACKEND_PIDS[@]}"; do
        stop_pid "$pid" 3
    done
    BACKEND_PIDS=()
}

# ---- proxies ----

PROXY=""
PROXY_PID=""

# Starts proxy $1 with its state and logs in $RUNDIR, waits until it answers
# and listens on the listener with offset $2.
start_proxy() {
    local name="$1" offset="$2"
    PROXY="$name"
    case "$name" in
        luas)
            spawn env RUST_LOG=warn taskset -c "$PROXY_CPU" target/release/luas run \
                --config bench/luas-bench.yaml --worker-threads 1 >"$RUNDIR/luas.log" 2>&1
            ;;
        nginx)
            mkdir -p "$RUNDIR/nginx/logs" "$RUNDIR/nginx/tmp"
            spawn taskset -c "$PROXY_CPU" nginx -p "$RUNDIR/nginx/" -e "$RUNDIR/nginx/error.log" \
                -c "$ROOT/bench/nginx.conf" -g "pid $RUNDIR/nginx/nginx.pid;" >"$RUNDIR/nginx.log" 2>&1
            ;;
        haproxy)
            mkdir -p "$RUNDIR/haproxy"
            spawn env HAPROXY_RUNDIR="$RUNDIR/haproxy" taskset -c "$PROXY_CPU" haproxy -db \
                -f bench/haproxy.cfg >"$RUNDIR/haproxy.log" 2>&1
            ;;
        *) die "unknown proxy $name" ;;
    esac
    PROXY_PID="$LAST_PID"
    # Every proxy binds all its listeners before serving any; the HTTP/1.1
    # one (offset 0) answers curl.
    wait_http "http://127.0.0.1:$(port_of "$name" 0)/" 10 ||
        die "$name did not answer on port $(port_of "$name" 0) within 10 s; see $RUNDIR"
    [ -n "$(ss -Hltn "sport = :$(port_of "$name" "$offset")")" ] ||
        die "$name does not listen on port $(port_of "$name" "$offset"); see $RUNDIR"
    if [ "$name" = luas ]; then
        wait_http "http://127.0.0.1:$LUAS_ADMIN/ready" 10 || die "luas is not ready; see $RUNDIR/luas.log"
    fi
    # nginx: the worker must be up too (the master answers nothing itself).
    fact proxy_processes "$(proxy_pids | wc -w)"
}

proxy_pids() {
    if [ -n "$PROXY_PID" ]; then
        # shellcheck disable=SC2046
        echo "$PROXY_PID" $(descendants "$PROXY_PID")
    fi
}

stop_proxy() {
    if [ -n "$PROXY_PID" ]; then
        alive "$PROXY_PID" || die "$PROXY exited during the run; see $RUNDIR"
        stop_pid "$PROXY_PID" 12
    fi
    PROXY_PID=""
    PROXY=""
}

# Requests each backend has had from the proxy so far, one "port count" line
# per backend: luas from /metrics (luas_backend_requests_total of the
# service), haproxy from its stats socket (stot of each server), nginx from
# the access log of the variant ($upstream_addr). Every try counts.
backend_counts() {
    local variant="$1"
    case "$PROXY" in
        luas)
            curl -fsS --max-time 5 "http://127.0.0.1:$LUAS_ADMIN/metrics" | awk -v svc="$variant" '
                /^luas_backend_requests_total\{/ && index($0, "service=\"" svc "\"") {
                    match($0, /endpoint="[^"]*"/)
                    endpoint = substr($0, RSTART + 10, RLENGTH - 11)
                    sub(/.*:/, "", endpoint)
                    n[endpoint] += $NF
                }
                END { for (e in n) print e, n[e] }'
            ;;
        haproxy)
            "$PY" - "$RUNDIR/haproxy/haproxy.sock" "${variant//-/_}" <<'EOF'
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(5)
sock.connect(sys.argv[1])
sock.sendall(b"show stat\n")
data = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
ports = {"s1": 19101, "s2": 19102, "s3": 19103}
for line in data.decode().splitlines():
    fields = line.split(",")
    if len(fields) > 7 and fields[0] == sys.argv[2] and fields[1] in ports:
        print(ports[fields[1]], fields[7])
EOF
            ;;
        nginx)
            local file="$RUNDIR/nginx/logs/$variant.log"
            [ -f "$file" ] || return 0
            awk '{
                sub(/ [0-9-]+$/, "")
                n = split($0, tries, /, | : /)
                for (i = 1; i <= n; i++) { a = tries[i]; sub(/.*:/, "", a); c[a]++ }
            }
            END { for (a in c) print a, c[a] }' "$file"
            ;;
    esac
}

# Records each backend's share of the load run: counts after minus before.
record_counts() {
    local before="$1" after="$2" port b a
    for port in "${BACKEND_PORTS[@]}"; do
        b="$(awk -v p="$port" '$1 == p { print $2 }' <<<"$before")"
        a="$(awk -v p="$port" '$1 == p { print $2 }' <<<"$after")"
        fact "backend_$port" $((${a:-0} - ${b:-0}))
    done
}

# ---- scenarios ----
#
# Each run_* function is one complete measurement of one proxy (or of the
# backend alone, "direct"): start, warm up, measure, stop. The scenario_*
# functions start the backends and run each in turn through redo.

new_run() {
    RUNDIR="$RESULTS/r$1/$2/$3"
    mkdir -p "$RUNDIR"
    : >"$RUNDIR/facts.txt"
    : >"$RUNDIR/cmd.txt"
}

# The URL of proxy $1's listener with offset $2, or of the first backend.
url_of() {
    if [ "$1" = direct ]; then
        echo "http://127.0.0.1:${BACKEND_PORTS[0]}/"
    else
        echo "http://127.0.0.1:$(port_of "$1" "$2")/"
    fi
}

maybe_start_proxy() {
    if [ "$1" != direct ]; then
        start_proxy "$1" "$2"
    fi
}

run_A1() {
    local round="$1" p="$2"
    new_run "$round" A1 "$p"
    log "round $round A1 $p"
    maybe_start_proxy "$p" 0
    run_wrk "$RUNDIR/warmup.txt" "$WARMUP" "$(url_of "$p" 0)"
    measure run_wrk "$RUNDIR/load.txt" "$DURATION" "$(url_of "$p" 0)"
    stop_proxy
}

scenario_A1() {
    local p
    start_backends 0,0,0
    # direct: wrk straight at one backend, a ceiling of the set-up.
    for p in direct $PROXIES; do
        redo run_A1 "$1" "$p"
    done
    stop_backends
}

run_A2() {
    local round="$1" p="$2"
    new_run "$round" A2 "$p"
    log "round $round A2 $p"
    start_proxy "$p" 1
    run_h2load "$RUNDIR/warmup.txt" "$WARMUP" "$(url_of "$p" 1)"
    measure run_h2load "$RUNDIR/load.txt" "$DURATION" "$(url_of "$p" 1)" \
        --log-file="$RUNDIR/requests.tsv"
    stop_proxy
}

scenario_A2() {
    local p
    start_backends 0,0,0
    for p in $PROXIES; do
        redo run_A2 "$1" "$p"
    done
    stop_backends
}

run_A3() {
    local round="$1" p="$2"
    new_run "$round" A3 "$p"
    log "round $round A3 $p"
    start_proxy "$p" 0
    run_wrk "$RUNDIR/warmup.txt" "$WARMUP" "$(url_of "$p" 0)" -H 'Connection: close'
    measure run_wrk "$RUNDIR/load.txt" "$DURATION" "$(url_of "$p" 0)" -H 'Connection: close'
    stop_proxy
}

scenario_A3() {
    local p
    start_backends 0,0,0
    for p in $PROXIES; do
        redo run_A3 "$1" "$p"
    done
    stop_backends
}

run_L() {
    local round="$1" p="$2"
    new_run "$round" L "$p"
    log "round $round L $p (oha -q $RATE)"
    maybe_start_proxy "$p" 0
    run_oha "$RUNDIR/warmup.json" "$WARMUP" "$(url_of "$p" 0)"
    measure run_oha "$RUNDIR/load.json" "$DURATION" "$(url_of "$p" 0)"
    stop_proxy
}

scenario_L() {
    local p
    start_backends 0,0,0
    for p in direct $PROXIES; do
        redo run_L "$1" "$p"
    done
    stop_backends
}

# The name of variant $2 (aware, rr, retry) in proxy $1's config.
variant_name() {
    case "$1:$2" in
        luas:aware) echo b-p2c ;;
        nginx:aware) echo b-least ;;
        haproxy:aware) echo b-least ;;
        *:rr) echo b-rr ;;
        *:retry) echo c-retry ;;
    esac
}

run_B() {
    local round="$1" variant="$2" p="$3" offset before after url
    if [ "$variant" = aware ]; then offset=2; else offset=3; fi
    new_run "$round" "B-$variant" "$p"
    log "round $round B ($variant balancer) $p"
    start_proxy "$p" "$offset"
    url="$(url_of "$p" "$offset")"
    run_oha "$RUNDIR/warmup.json" "$WARMUP" "$url"
    before="$(backend_counts "$(variant_name "$p" "$variant")")"
    measure run_oha "$RUNDIR/load.json" "$DURATION" "$url"
    after="$(backend_counts "$(variant_name "$p" "$variant")")"
    record_counts "$before" "$after"
    stop_proxy
}

scenario_B() {
    local variant p
    start_backends 0,0,50
    for variant in aware rr; do
        for p in $PROXIES; do
            redo run_B "$1" "$variant" "$p"
        done
    done
    stop_backends
}

# oha in the background; the third backend is killed KILL_AT s in. The
# per-backend counts just before the kill give the tries the dead one got
# after it.
c_load() {
    local url="$1" oha_pid
    spawn run_oha "$RUNDIR/load.json" "$DURATION" "$url"
    oha_pid="$LAST_PID"
    sleep "$KILL_AT"
    backend_counts "$(variant_name "$PROXY" retry)" >"$RUNDIR/counts-at-kill.txt"
    # (disowned first, so bash does not report the job as "Killed")
    disown "${BACKEND_PIDS[2]}" 2>/dev/null || true
    kill -KILL "${BACKEND_PIDS[2]}" 2>/dev/null || true
    fact killed "${BACKEND_PORTS[2]} at $(now)"
    wait "$oha_pid" || die "oha failed in scenario C; see $RUNDIR"
}

run_C() {
    local round="$1" delay="$2" p="$3" before after url
    new_run "$round" "C-${delay}ms" "$p"
    log "round $round C (backends at $delay ms, one killed ${KILL_AT}s in) $p"
    start_backends_split "$delay"
    start_proxy "$p" 4
    url="$(url_of "$p" 4)"
    run_oha "$RUNDIR/warmup.json" "$WARMUP" "$url"
    before="$(backend_counts "$(variant_name "$p" retry)")"
    measure c_load "$url"
    after="$(backend_counts "$(variant_name "$p" retry)")"
    record_counts "$before" "$after"
    fact dead_tries_after_kill $(($(awk -v p="${BACKEND_PORTS[2]}" '$1 == p { print $2 }' <<<"$after") -
        $(awk -v p="${BACKEND_PORTS[2]}" '$1 == p { print $2 }' "$RUNDIR/counts-at-kill.txt")))
    stop_proxy
    stop_backends
}

scenario_C() {
    local delay p
    for delay in 0 20; do
        for p in $PROXIES; do
            redo run_C "$1" "$delay" "$p"
        done
    done
}

# Memory is not disturbed by other processes the way time is: no redo.
run_D() {
    local round="$1" p="$2" port idle_pid pids waited
    new_run "$round" D "$p"
    log "round $round D ($IDLE_CONNS idle connections) $p"
    start_proxy "$p" 0
    port="$(port_of "$p" 0)"
    # Warm-up: a little traffic over a few connections.
    load_cmd 30 "$RUNDIR/warmup.txt" wrk -t1 -c16 -d1s "http://127.0.0.1:$port/" ||
        die "wrk against $port failed; see $RUNDIR/warmup.txt"
    sleep 1
    # shellcheck disable=SC2207
    pids=($(proxy_pids))
    fact rss_before_kib "$(rss_kib "${pids[@]}")"
    printf '%q ' taskset -c "$LOAD_CPU" "$PY" bench/idle_conns.py --port "$port" --count "$IDLE_CONNS" >>"$RUNDIR/cmd.txt"
    echo >>"$RUNDIR/cmd.txt"
    spawn taskset -c "$LOAD_CPU" "$PY" bench/idle_conns.py --port "$port" --count "$IDLE_CONNS" \
        --hold 300 >"$RUNDIR/idle.txt" 2>"$RUNDIR/idle.stderr"
    idle_pid="$LAST_PID"
    waited=0
    until grep -q '^ready' "$RUNDIR/idle.txt"; do
        alive "$idle_pid" || { cat "$RUNDIR/idle.stderr" >&2; die "idle_conns.py exited early"; }
        sleep 0.2
        waited=$((waited + 1))
        [ "$waited" -lt 900 ] || die "the idle connections were not open within 180 s"
    done
    sleep 2
    fact rss_after_kib "$(rss_kib "${pids[@]}")"
    fact established "$(ss -Htn state established "( sport = :$port )" | wc -l)"
    stop_pid "$idle_pid" 10
    stop_proxy
}

scenario_D() {
    local p
    start_backends 0,0,0
    for p in $PROXIES; do
        run_D "$1" "$p"
    done
    stop_backends
}

# ---- set-up ----

[ "$(uname -s)" = Linux ] || die "this benchmark needs Linux (/proc and taskset)"
[ "$(nproc)" -ge 2 ] || die "this benchmark pins to CPUs 0 and 1 and needs at least 2"
for value in "$ROUNDS" "$DURATION" "$WARMUP" "$RATE" "$IDLE_CONNS" "$KILL_AT" "$DISTURB_PCT" "$MAX_REDO" "$QUIET_WAIT" "$FUZZ_SECONDS"; do
    is_uint "$value" ||
        die "ROUNDS, DURATION, WARMUP, RATE, IDLE_CONNS, KILL_AT, DISTURB_PCT, MAX_REDO, QUIET_WAIT and FUZZ_SECONDS are whole numbers"
done
if [ "$ROUNDS" -lt 1 ] || [ "$DURATION" -lt 2 ] || [ "$WARMUP" -lt 1 ]; then
    die "need ROUNDS >= 1, DURATION >= 2, WARMUP >= 1"
fi
[ "$KILL_AT" -lt "$DURATION" ] || die "KILL_AT ($KILL_AT) must be below DURATION ($DURATION)"
for s in $SCENARIOS; do
    case "$s" in A1 | A2 | A3 | L | B | C | D) ;; *) die "unknown scenario $s" ;; esac
done
for p in $PROXIES; do
    case "$p" in luas | nginx | haproxy) ;; *) die "unknown proxy $p" ;; esac
done

START_TIME="$(now)"
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# The plot: any python3 with matplotlib, else Debian's.
PLOT_PY=""
for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c 'import matplotlib' >/dev/null 2>&1; then
        PLOT_PY="$candidate"
        break
    fi
done
[ -n "$PLOT_PY" ] || missing+=(python3-matplotlib)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ -z "$PLOT_PY" ]; then
    /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || die "python3-matplotlib did not install"
    PLOT_PY=/usr/bin/python3
fi
PY="$(python3 -c 'import sys; print(sys.executable)')"

OHA=""
if [ -x bench/.tools/bin/oha ]; then
    OHA="$ROOT/bench/.tools/bin/oha"
elif command -v oha >/dev/null 2>&1; then
    OHA="$(command -v oha)"
else
    log "installing oha $OHA_VERSION into bench/.tools (cargo install; a few minutes)"
    cargo install oha --locked --version "$OHA_VERSION" --root bench/.tools
    OHA="$ROOT/bench/.tools/bin/oha"
fi
"$OHA" --help | grep -q -- '--output-format' ||
    die "$OHA has no --output-format (older than 1.9?); remove it or set up oha $OHA_VERSION in bench/.tools"

log "building luas and the benchmark backend (release)"
cargo build --locked --release
cargo build --locked --release --example backend

ALL_PORTS=("${BACKEND_PORTS[@]}" "$LUAS_ADMIN")
for p in luas nginx haproxy; do
    for offset in 0 1 2 3 4; do
        ALL_PORTS+=("$(port_of "$p" "$offset")")
    done
done
busy_ports=()
for port in "${ALL_PORTS[@]}"; do
    if [ -n "$(ss -Hltn "sport = :$port")" ]; then
        busy_ports+=("$port")
    fi
done
[ "${#busy_ports[@]}" -eq 0 ] || die "ports already in use: ${busy_ports[*]}; stop what listens there first"

# Open files: 10 000 idle client connections (plus the upstream ones) per
# process; the limit is inherited by everything started below.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 1000)) ] ||
    die "the open-file limit ($(ulimit -n)) is too low for IDLE_CONNS=$IDLE_CONNS; raise the hard limit"

RESULTS="$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
if [ "$QUICK" = 1 ]; then
    REPORT_DIR="${REPORT_DIR:-$RESULTS}"
else
    REPORT_DIR="${REPORT_DIR:-$ROOT/docs}"
fi
CLK_TCK="$(getconf CLK_TCK)"

{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "quick $QUICK"
    echo "rounds $ROUNDS"
    echo "duration $DURATION"
    echo "warmup $WARMUP"
    echo "rate $RATE"
    echo "idle_conns $IDLE_CONNS"
    echo "kill_at $KILL_AT"
    echo "disturb_pct $DISTURB_PCT"
    echo "max_redo $MAX_REDO"
    echo "scenarios $SCENARIOS"
    echo "proxies $PROXIES"
    echo "nproc $(nproc)"
    echo "cpu_model $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel $(uname -r)"
    # shellcheck disable=SC1091
    echo "os $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "memory $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "nofile $(ulimit -n)"
} >"$RESULTS/settings.txt"
{
    echo "luas $(target/release/luas --version 2>&1 | head -1) (git $(git describe --always --dirty 2>/dev/null || echo unknown))"
    echo "nginx $(nginx -v 2>&1 | head -1)"
    echo "haproxy $(haproxy -v 2>&1 | head -1)"
    echo "wrk $(wrk -v 2>&1 | head -1 || true)"
    echo "h2load $(h2load --version 2>&1 | head -1)"
    echo "oha $("$OHA" --version 2>&1 | head -1)"
    echo "backend examples/backend.rs (git $(git describe --always --dirty 2>/dev/null || echo unknown))"
    echo "python $("$PY" --version 2>&1)"
} >"$RESULTS/versions.txt"
git status --porcelain -- src examples Cargo.toml Cargo.lock >"$RESULTS/git-status.txt" 2>/dev/null || true
cp bench/luas-bench.yaml bench/nginx.conf bench/haproxy.cfg "$RESULTS/"

log "results in $RESULTS"
sed 's/^/    /' "$RESULTS/versions.txt"
log "waiting for the machine to be quiet (other processes under ${DISTURB_PCT}% of a CPU; at most ${QUIET_WAIT}s)"
wait_quiet

# The proxies' order, rotated by one each round (see the top).
rotated() { # ROUND: $ALL_PROXIES starting with the (ROUND-1 mod n)-th
    local -a all
    read -r -a all <<<"$ALL_PROXIES"
    local n=${#all[@]} shift=$((($1 - 1) % ${#all[@]})) i
    for ((i = 0; i < n; i++)); do
        printf '%s ' "${all[(shift + i) % n]}"
    done
}
ALL_PROXIES="$PROXIES"
for round in $(seq "$ROUNDS"); do
    PROXIES="$(rotated "$round")"
    PROXIES="${PROXIES% }"
    echo "order_round$round $PROXIES" >>"$RESULTS/settings.txt"
    for scenario in $SCENARIOS; do
        "scenario_$scenario" "$round"
    done
done
PROXIES="$ALL_PROXIES"

END_TIME="$(now)"
echo "elapsed_s $(awk -v a="$START_TIME" -v b="$END_TIME" 'BEGIN { printf "%.0f", b - a }')" >>"$RESULTS/settings.txt"
echo "loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/settings.txt"

log "writing the report to $REPORT_DIR"
mkdir -p "$REPORT_DIR"
"$PLOT_PY" bench/report.py "$RESULTS" "$REPORT_DIR"

# The HTTP/1.1 codec's fuzz targets (bench/fuzz.sh): after the measurements,
# so its builds and runs disturb none of them.
if [ "$FUZZ_SECONDS" -eq 0 ]; then
    log "fuzz: skipped (FUZZ_SECONDS=0)"
elif ! cargo +nightly --version >/dev/null 2>&1; then
    log "fuzz: skipped (no nightly toolchain; rustup toolchain install nightly)"
else
    log "fuzzing the HTTP/1.1 codec, ${FUZZ_SECONDS}s per target (bench/fuzz.sh)"
    if FUZZ_SECONDS="$FUZZ_SECONDS" bash bench/fuzz.sh | tee "$RESULTS/fuzz.txt"; then
        log "fuzz: no findings"
    else
        echo "warning: bench/fuzz.sh reported findings or failed; see above and fuzz/artifacts/" >&2
    fi
fi
log "done in $(awk -v a="$START_TIME" -v b="$END_TIME" 'BEGIN { printf "%.1f", (b - a) / 60 }') min; raw output in $RESULTS"
