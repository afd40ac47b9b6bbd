#!/usr/bin/env bash
# The canary set of examples/kubernetes on a throwaway kind cluster: a
# rollback through one replica must reach every replica, as their Leases
# say. NOT run by scripts/test.sh or CI: it needs Docker, kind and kubectl
# and pulls images from the internet. Run it by hand where those are:
#
#   bash scripts/kind-e2e.sh
#
# Steps: create the kind cluster $KIND_CLUSTER (default luas-e2e; with
# $KIND_NODE_IMAGE, e.g. a kindest/node v1.33 image, the oldest Kubernetes
# luas supports), build the luas image from the Dockerfile and load it into
# the cluster, apply examples/kubernetes/canary/ to namespace $NAMESPACE
# (default luas-e2e) with a random admin token, the image just built, and
# $APP_IMAGE (agnhost's netexec, an HTTP server on 8080 answering /healthz)
# in place of the placeholder applications; wait for the three replicas'
# Leases; run `luas ctl rollback app` in one luas pod; then wait until the
# Lease of every replica says (annotation luas.io/applied-version) that it
# has applied the fleet state version the rollback wrote, or at least that
# one. Deletes the cluster at the end unless KEEP_CLUSTER=1.
#
# Every wait is bounded (WAIT_SECONDS, default 180, for each).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster="${KIND_CLUSTER:-luas-e2e}"
namespace="${NAMESPACE:-luas-e2e}"
image="luas:e2e"
app_image="${APP_IMAGE:-registry.k8s.io/e2e-test-images/agnhost:2.53}"
wait_seconds="${WAIT_SECONDS:-180}"
replicas=3

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "error: $*" >&2
    exit 1
}

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found; this script needs docker, kind and kubectl"
done

work="$(mktemp -d)"
cleanup() {
    rm -rf "$work"
    if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
        kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    else
        echo "kept cluster $cluster (kind delete cluster --name $cluster)"
    fi
}
trap cleanup EXIT

# Calls "$@" once a second until it succeeds, for at most wait_seconds.
wait_for() {
    local what="$1"
    shift
    local deadline=$((SECONDS + wait_seconds))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "timed out after ${wait_seconds}s waiting for $what"
        fi
        sleep 1
    done
}

step "kind cluster $cluster"
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    kind create cluster --name "$cluster" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi
kctl() {
    kubectl --context "kind-$cluster" --namespace "$namespace" "$@"
}
kubectl --context "kind-$cluster" version

step "docker build -t $image . and kind load"
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

step "apply examples/kubernetes/canary to namespace $namespace"
kubectl --context "kind-$cluster" create namespace "$namespace" --dry-run=client -o yaml |
    kubectl --context "kind-$cluster" apply -f -
cp examples/kubernetes/canary/*.yaml "$work/"
token="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
sed -i "s/REPLACE_WITH_A_RANDOM_TOKEN/$token/" "$work/secret.yaml"
sed -i "s|ghcr.io/luas-proxy/luas:0.1.0|$image|" "$work/deployment.yaml"
# The image is local only: never pull it.
sed -i "s|^\(\s*\)image: $image|&\n\1imagePullPolicy: Never|" "$work/deployment.yaml"
kctl apply -f "$work/"
# The placeholder applications, replaced by a real HTTP server on 8080.
for app in app-v1 app-v2; do
    kctl patch deployment "$app" --type=json -p "[
      {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"$app_image\"},
      {\"op\": \"add\", \"path\": \"/spec/template/spec/containers/0/args\", \"value\": [\"netexec\", \"--http-port=8080\"]}
    ]"
done

step "waiting for $replicas replica Leases of fleet canary"
replica_leases() {
    kctl get leases -l luas.io/fleet=canary,luas.io/role=replica \
        -o jsonpath='{range .items[*]}{.metadata.name}{"="}{.metadata.annotations.luas\.io/applied-version}{"\n"}{end}'
}
enough_replicas() {
    [ "$(replica_leases | grep -c '=[0-9]')" -ge "$replicas" ]
}
wait_for "$replicas replica Leases" enough_replicas
replica_leases

step "luas ctl rollback app, through one replica"
pod="$(kctl get pods -l app.kubernetes.io/name=luas-canary -o jsonpath='{.items[0].metadata.name}')"
answer="$(kctl exec "$pod" -c luas -- /usr/local/bin/luas ctl --wait 10s rollback app)"
echo "$answer"
echo "$answer" | grep -q "rolled back app on $replicas/$replicas replicas" ||
    fail "the rollback did not report $replicas/$replicas replicas"

# The version the rollback wrote: the fleet state's version now (the
# rollout leader may write later versions, which count too).
state="$(kctl get configmap luas-fleet-canary -o jsonpath='{.data.state\.json}')"
version="$(printf '%s\n' "$state" | sed -n 's/^ *"version": *\([0-9]*\).*/\1/p' | head -n 1)"
[ -n "$version" ] || fail "no version in ConfigMap luas-fleet-canary: $state"
echo "fleet state version $version"

step "every replica's Lease has applied version $version"
all_applied() {
    local count=0 name applied
    while IFS='=' read -r name applied; do
        [ -n "$name" ] || continue
        [ "${applied:-0}" -ge "$version" ] || return 1
        count=$((count + 1))
    done < <(replica_leases)
    [ "$count" -ge "$replicas" ]
}
wait_for "every replica to apply version $version" all_applied
replica_leases
kctl exec "$pod" -c luas -- /usr/local/bin/luas ctl fleet

step "kind e2e passed: the rollback reached all $replicas replicas"
