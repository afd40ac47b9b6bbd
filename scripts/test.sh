#!/usr/bin/env bash
# The whole luas test suite, as one command, on a fresh Debian machine with
# Rust (rustup) installed:
#
#   bash scripts/test.sh
#
# Installs what the tests need when it is missing (the Rust toolchain pinned
# in rust-toolchain.toml, promtool from the Debian package `prometheus`,
# curl, Node.js, npm and Chromium for the dashboard's browser test, that
# test's npm packages, kubernetes-validate from PyPI in a virtualenv for the
# Kubernetes manifests' schema test, cargo-deny and cargo-machete), then
# runs, in order and stopping at the first failure:
#   scripts/check-msrv.py             rust-version true for the locked graph
#   cargo fmt --check
#   cargo clippy --locked --all-targets -- -D warnings
#   cargo deny check licenses bans sources
#   cargo machete                     no unused dependency
#   scripts/modgraph.py               no import cycle between src/'s modules
#   cargo test --locked --doc
#   cargo test --locked --all-targets
#   cargo test --locked --lib --bins --tests --examples -- --ignored
# and ends with one line counting every test run: "tests: N passed, N failed".
#
# The tests that need an outside program (Chromium, promtool, curl,
# kubernetes-validate) are #[ignore]d so that a plain `cargo test` passes
# without them; this script installs the programs and runs those too (a
# second `cargo test` with --ignored, which runs only them), counting each
# test once.
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

# rust-toolchain.toml pins the toolchain; rustup would download it at the
# first cargo command below. A machine that cannot download toolchains but
# has the same version installed as `stable` gets the pinned name pointed at
# it (what `rustup toolchain install` would have put there).
pinned="$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)"
if command -v rustup >/dev/null 2>&1 && ! rustup toolchain list | grep -q "^$pinned-"; then
    stable_release="$(rustup run stable rustc -vV 2>/dev/null | sed -n 's/^release: //p' || true)"
    if [ "$stable_release" = "$pinned" ]; then
        host="$(rustup run stable rustc -vV | sed -n 's/^host: //p')"
        step "Rust $pinned is installed as stable: naming it $pinned-$host"
        ln -s "$(rustup run stable rustc --print sysroot)" \
            "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$pinned-$host"
    else
        step "installing Rust $pinned (rust-toolchain.toml)"
        rustup toolchain install "$pinned" --profile minimal --component rustfmt,clippy
    fi
fi
cargo --version

# Debian packages behind commands the tests run: promtool (checks the
# /metrics exposition), curl (speaks TLS with --cacert, HTTP/1.1 and /2), and
# for the dashboard's browser test (tests/it/dashboard.rs) Node.js, npm and
# Chromium, which playwright-core drives (chromium-driver comes along for
# WebDriver clients).
missing_packages=()
command -v python3 >/dev/null 2>&1 || missing_packages+=(python3)
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
for tool in python3 promtool curl node npm chromium chromedriver; do
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

# kubernetes-validate (pinned with its dependencies in
# tests/kubernetes-validate/requirements.txt), which checks the Kubernetes
# manifests against the 1.33 OpenAPI schemas (tests/it/kubernetes.rs), in a
# virtualenv of its own beside that file, not in the system's Python: when
# the virtualenv is missing or the requirements changed since it was made.
# Debian's python3 makes virtualenvs only with python3-venv installed.
validate=tests/kubernetes-validate
if ! cmp -s "$validate/requirements.txt" "$validate/.venv/.luas-installed-requirements.txt"; then
    step "pip install -r $validate/requirements.txt (into $validate/.venv)"
    rm -rf "$validate/.venv"
    if ! python3 -m venv "$validate/.venv"; then
        step "installing Debian package python3-venv"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends python3-venv
        rm -rf "$validate/.venv"
        python3 -m venv "$validate/.venv"
    fi
    "$validate/.venv/bin/python" -m pip install --no-input --disable-pip-version-check \
        --no-deps -r "$validate/requirements.txt"
    # --no-deps: fail here, not in the test, if the pins miss a dependency.
    "$validate/.venv/bin/python" -m pip check --disable-pip-version-check
    cp "$validate/requirements.txt" "$validate/.venv/.luas-installed-requirements.txt"
fi
echo "kubernetes-validate: $("$validate/.venv/bin/kubernetes-validate" --version)"

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

# The dependency checks, built from crates.io at the versions their own
# lockfiles pin, once per machine: 8 minutes of CPU for cargo-deny and 4 for
# cargo-machete, so about 5 and 2 minutes on an idle 2-core machine.
if ! command -v cargo-deny >/dev/null 2>&1; then
    step "cargo install --locked cargo-deny"
    cargo install --locked cargo-deny@0.20.2
fi
if ! command -v cargo-machete >/dev/null 2>&1; then
    step "cargo install --locked cargo-machete"
    cargo install --locked cargo-machete@0.9.2
fi

step "rust-version and the pinned toolchain (scripts/check-msrv.py)"
python3 scripts/check-msrv.py

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --locked --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo deny check licenses bans sources (deny.toml)"
cargo deny --locked check licenses bans sources

step "cargo machete (unused dependencies)"
cargo machete

# The module graph must stay acyclic (docs/architecture.md).
step "module graph (scripts/modgraph.py)"
python3 scripts/modgraph.py

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

set +e
step "cargo test --locked --doc"
cargo test --locked --doc 2>&1 | tee -a "$log"
doc_status=${PIPESTATUS[0]}

step "cargo test --locked --all-targets"
cargo test --locked --all-targets 2>&1 | tee -a "$log"
test_status=${PIPESTATUS[0]}

# The tests ignored for want of Chromium, promtool, curl or
# kubernetes-validate (installed above)
# run here, and only here, so each test counts once in the total. Every
# target but the benchmark, whose harness (criterion) takes no --ignored;
# the benchmarks named bench_ (scripts/fleet-bench.sh,
# scripts/balance-shares.sh) measure on a quiet machine; they do not test.
step "cargo test --locked --lib --bins --tests --examples -- --ignored"
cargo test --locked --lib --bins --tests --examples -- --ignored --skip bench_ 2>&1 | tee -a "$log"
ignored_status=${PIPESTATUS[0]}
set -e

# One total over every test binary, so the last line says what ran: an
# ignored test counts once, as passed or failed in the --ignored run.
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$doc_status" -ne 0 ] || [ "$test_status" -ne 0 ] || [ "$ignored_status" -ne 0 ]; then
    echo "tests: $passed passed, $failed failed"
    exit 1
fi
step "all checks passed"
echo "tests: $passed passed, $failed failed"
