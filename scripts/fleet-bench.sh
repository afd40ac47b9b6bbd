#!/usr/bin/env bash
# Fleet mode on loopback with the in-test Kubernetes API server: how long a
# change takes to reach every replica (p50/p99 over 40 changes) and the API
# requests an idle fleet makes, at 3 and at 20 replicas. Numbers, not a test:
# run by hand, not in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
for replicas in 3 20; do
  LUAS_FLEET_REPLICAS=$replicas cargo test --locked --test it -- --ignored --exact \
    fleet::bench_fleet_propagation --nocapture 2>&1 | grep '^fleet of'
done
