#!/usr/bin/env bash
# Fuzzes luas's HTTP/1.1 codec (src/http1) with cargo-fuzz: every target of
# fuzz/ for FUZZ_SECONDS each, then one line per target:
#
#   target=<name> seconds=<s> executions=<n> findings=<k>
#
# executions is libFuzzer's stat::number_of_executed_units; findings counts
# the crash, leak, timeout and out-of-memory inputs written to
# fuzz/artifacts/<target>/ during this run (each stops its target's run).
#
#   bash bench/fuzz.sh                  # 60 s per target
#   FUZZ_SECONDS=300 bash bench/fuzz.sh
#   FUZZ_TARGETS=chunked bash bench/fuzz.sh
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs
# cargo-fuzz (cargo install cargo-fuzz --locked) when it is missing. The
# seed inputs in fuzz/corpus/<target>/ are read, never written: what the
# fuzzer adds goes to fuzz/work/<target>/ (git-ignored), kept between runs.
# Build output goes to CARGO_TARGET_DIR when set, else fuzz/target.
#
# Exits 1 when a target had findings or did not run, 0 otherwise; each run
# is bounded by libFuzzer's -max_total_time and, should that fail, by
# `timeout`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TARGETS="${FUZZ_TARGETS:-request_head chunked response_head}"
# Grace beyond FUZZ_SECONDS before `timeout` stops a run that did not stop
# itself (loading the corpus, writing a finding).
GRACE=60

[[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]] || {
    echo "error: FUZZ_SECONDS must be a positive whole number, not '$FUZZ_SECONDS'" >&2
    exit 2
}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "error: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

echo "==> building the fuzz targets (cargo +nightly fuzz build)"
# shellcheck disable=SC2086 # FUZZ_TARGETS is a list of names
for target in $FUZZ_TARGETS; do
    (cd fuzz && cargo +nightly fuzz build "$target")
done

status=0
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# shellcheck disable=SC2086
for target in $FUZZ_TARGETS; do
    work="fuzz/work/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    marker="$logs/$target.start"
    touch "$marker"
    log="$logs/$target.log"
    echo "==> fuzzing $target for ${FUZZ_SECONDS}s"
    started="$(date +%s)"
    # The first corpus directory receives new inputs; the seeds stay as
    # they are. A finding makes libFuzzer exit non-zero: counted below.
    (cd fuzz && timeout --signal=INT --kill-after=10 $((FUZZ_SECONDS + GRACE)) \
        cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1) >"$log" 2>&1 || true
    seconds=$(($(date +%s) - started))
    executions="$(awk '/^stat::number_of_executed_units:/ { n = $2 } END { print n }' "$log")"
    if [ -z "$executions" ]; then
        # No final stats (killed, or failed to start): the last status line.
        executions="$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)"
    fi
    findings="$(find "$artifacts" -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
    if [ -z "$executions" ]; then
        echo "error: $target did not run; its output:" >&2
        tail -20 "$log" >&2
        executions=0
        status=1
    fi
    if [ "$findings" -gt 0 ]; then
        echo "$target: $findings finding(s) in $artifacts:" >&2
        find "$artifacts" -type f -newer "$marker" >&2
        grep -m1 -A3 'ERROR: \|panicked at' "$log" >&2 || true
        status=1
    fi
    echo "target=$target seconds=$seconds executions=$executions findings=$findings"
done
exit "$status"
