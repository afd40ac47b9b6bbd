#!/usr/bin/env bash
# The whole luas test suite, as one command, on a fresh Debian machine with
# Rust (rustup) installed:
#
#   bash scripts/test.sh
#
# Installs what the tests need when it is missing (promtool from the Debian
# package `prometheus`, curl, Node.js, npm and Chromium for the dashboard's
# browser test, that test's npm packages, the rustfmt and clippy components),
# then runs, in order and stopping at the first failure:
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --doc
#   cargo test --all-targets
# and ends with one line counting every test run: "tests: N passed, N failed".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    printf '\n==> %s\n' "$*"
}

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step "checking tools"
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
cargo --version

# Debian packages behind commands the tests run: promtool (checks the
# /metrics exposition), curl (speaks TLS with --cacert, HTTP/1.1 and /2), and
# for the dashboard's browser test (tests/dashboard.rs) Node.js, npm and
# Chromium, which playwright-core drives (chromium-driver comes along for
# WebDriver clients).
missing_packages=()
command -v promtool >/dev/null 2>&1 || missing_packages+=(prometheus)
command -v curl >/dev/null 2>&1 || missing_packages+=(curl ca-certificates)
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || missing_packages+=(npm)
[ -x /usr/bin/chromium ] || missing_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || missing_packages+=(chromium-driver)
if [ "${#missing_packages[@]}" -gt 0 ]; then
    step "installing Debian packages: ${missing_packages[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing_packages[@]}"
fi
for tool in promtool curl node npm chromium chromedriver; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is still missing after installing ${missing_packages[*]}" >&2
        exit 1
    }
    echo "$tool: $(command -v "$tool")"
done
# playwright-core (pinned in tests/dashboard/package.json) needs Node.js 20.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "error: the dashboard test needs Node.js 20 or newer; $(command -v node) is $(node --version)" >&2
    exit 1
fi

# The dashboard test's npm packages (playwright-core, exactly as locked), when
# node_modules is missing or the lockfile changed since the last install.
# playwright-core downloads no browser; the test uses Debian's Chromium.
dashboard=tests/dashboard
if ! cmp -s "$dashboard/package-lock.json" "$dashboard/node_modules/.luas-installed-lock.json"; then
    step "npm ci in $dashboard"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dashboard" --no-audit --no-fund
    cp "$dashboard/package-lock.json" "$dashboard/node_modules/.luas-installed-lock.json"
fi

missing_components=()
cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy)
if [ "${#missing_components[@]}" -gt 0 ]; then
    step "installing rustup components: ${missing_components[*]}"
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: ${missing_components[*]} missing and rustup not found to install them" >&2
        exit 1
    fi
    rustup component add "${missing_components[@]}"
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

set +e
step "cargo test --doc"
cargo test --doc 2>&1 | tee -a "$log"
doc_status=${PIPESTATUS[0]}

step "cargo test --all-targets"
cargo test --all-targets 2>&1 | tee -a "$log"
test_status=${PIPESTATUS[0]}
set -e

# One total over every test binary, so the last line says what ran.
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$doc_status" -ne 0 ] || [ "$test_status" -ne 0 ]; then
    echo "tests: $passed passed, $failed failed"
    exit 1
fi
step "all checks passed"
echo "tests: $passed passed, $failed failed"
