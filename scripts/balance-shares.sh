#!/usr/bin/env bash
# How p2c-ewma shares 300 sequential requests between identical replicas on
# loopback (2 and 3 replicas), five rounds; each share must be 35-65 % of
# two and 20-47 % of three. A measurement for a quiet machine, not run in
# CI: under a loaded test suite, scheduling delays are noise above the
# balancer's 1 ms resolution.
set -euo pipefail
cd "$(dirname "$0")/.."
for round in 1 2 3 4 5; do
  cargo test --locked --test it -- --ignored --exact \
    balancing::bench_identical_replicas_share_the_traffic_evenly --nocapture 2>&1 \
    | grep -E '^(2|3) identical|test result'
done
