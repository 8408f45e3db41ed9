#!/usr/bin/env bash
# The kpulse demo on a real (kind) cluster: three nodes, metrics-server, ingress-nginx, the shop
# with the embedded demo's troubles, optionally Prometheus; then kpulse as a read-only
# ServiceAccount. Needs Docker, kind and kubectl. Tear down with demo/kind/down.sh.
#
#   demo/kind/up.sh [--with-prometheus]
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
repo=$(cd ../.. && pwd)
# Versions the manifests below were written for; override to follow upstream.
METRICS_SERVER=${METRICS_SERVER:-v0.8.0}
INGRESS_NGINX=${INGRESS_NGINX:-controller-v1.13.3}
with_prometheus=""
[ "${1:-}" = "--with-prometheus" ] && with_prometheus=1

need() { command -v "$1" >/dev/null 2>&1 || { echo "demo/kind: $1 is required: $2" >&2; exit 1; }; }
need docker "https://docs.docker.com/engine/install/"
need kind "go install sigs.k8s.io/kind@latest"
need kubectl "https://kubernetes.io/docs/tasks/tools/ (or scripts/k8s-assets.sh builds one)"

ctx=kind-kpulse-demo
k() { kubectl --context "$ctx" "$@"; }
kind get clusters 2>/dev/null | grep -qx kpulse-demo || kind create cluster --config kind-config.yaml

echo "demo/kind: metrics-server $METRICS_SERVER (kind's kubelets have self-signed certificates)"
k apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER/components.yaml"
k -n kube-system patch deployment metrics-server --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]' || true

echo "demo/kind: ingress-nginx $INGRESS_NGINX"
k apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/$INGRESS_NGINX/deploy/static/provider/kind/deploy.yaml"
k -n ingress-nginx wait --for=condition=available deployment/ingress-nginx-controller --timeout=300s

k apply -f manifests/shop.yaml
[ -n "$with_prometheus" ] && k apply -f manifests/prometheus.yaml

# kpulse runs as the read-only ServiceAccount of config/rbac-readonly.yaml, never as the admin.
k apply -f "$repo/config/rbac-readonly.yaml"
token=$(k -n kpulse create token kpulse --duration=8h)
server=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$here/ca.crt"
kc="$here/kpulse-readonly.kubeconfig"
rm -f "$kc"
KUBECONFIG=$kc kubectl config set-cluster kpulse-demo --server="$server" --certificate-authority="$here/ca.crt" --embed-certs >/dev/null
KUBECONFIG=$kc kubectl config set-credentials kpulse --token="$token" >/dev/null
KUBECONFIG=$kc kubectl config set-context kpulse-demo --cluster=kpulse-demo --user=kpulse >/dev/null
KUBECONFIG=$kc kubectl config use-context kpulse-demo >/dev/null
chmod 600 "$kc"; rm -f "$here/ca.crt"

echo "demo/kind: waiting for the shop to start (the troubles take a few minutes to show)"
k -n shop wait --for=condition=available deployment/frontend --timeout=300s || true
kpulse=${KPULSE:-$(command -v kpulse || echo "$repo/target/release/kpulse")}
[ -x "$kpulse" ] || (cd "$repo" && cargo build --release --locked)
exec "$kpulse" --kubeconfig "$kc" -A ${with_prometheus:+--prometheus auto}
