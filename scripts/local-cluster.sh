#!/usr/bin/env bash
# A real, kubelet-less Kubernetes control plane on 127.0.0.1 to try kpulse against: etcd and
# kube-apiserver from scripts/k8s-assets.sh, started as controller-runtime's envtest starts them
# (RBAC, token users, an audit log of every request), populated from a kpulse scenario by a
# harness that plays kubelet (cargo run --example populate-cluster).
#
#   scripts/local-cluster.sh [populate-cluster args]   # default: --follow; Ctrl-C stops everything
#   scripts/local-cluster.sh demo/scenarios/shop.toml --pods 10000   # a static 10,000-pod cluster
#   kpulse --kubeconfig $DIR/readonly.kubeconfig -A
#
# The tests (tests/real_apiserver.rs) start the same processes with the same flags.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(scripts/k8s-assets.sh | tail -n 1)
DIR=${KPULSE_CLUSTER_DIR:-$(mktemp -d /tmp/kpulse-cluster.XXXXXX)}
mkdir -p "$DIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); PEER_PORT=$(free_port); PORT=${KPULSE_APISERVER_PORT:-$(free_port)}
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/etcd" --data-dir="$DIR/etcd" --unsafe-no-fsync=true \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
  --initial-cluster="default=http://127.0.0.1:$PEER_PORT" 2>"$DIR/etcd.log" &
pids+=($!)

[ -f "$DIR/sa.key" ] || openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$ADMIN_TOKEN,admin,1,\"system:masters\"" > "$DIR/tokens.csv"
chmod 600 "$DIR/tokens.csv" "$DIR/sa.key"
printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' > "$DIR/audit-policy.yaml"

"$BIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" --cert-dir="$DIR/certs" --authorization-mode=RBAC \
  --token-auth-file="$DIR/tokens.csv" --service-account-key-file="$DIR/sa.key" \
  --service-account-signing-key-file="$DIR/sa.key" --service-account-issuer="https://127.0.0.1:$PORT/" \
  --service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount --allow-privileged=true \
  --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" 2>"$DIR/apiserver.log" &
pids+=($!)

kubeconfig() { # user token [namespace]
  cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $DIR/certs/apiserver.crt
contexts:
- name: $1
  context:
    cluster: local
    user: $1${3:+
    namespace: $3}
current-context: $1
users:
- name: $1
  user:
    token: $2
YAML
}
kubeconfig admin "$ADMIN_TOKEN" > "$DIR/admin.kubeconfig"
chmod 600 "$DIR/admin.kubeconfig"
for _ in $(seq 1 240); do
  "$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get --raw=/readyz >/dev/null 2>&1 && break
  sleep 0.5
done
"$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get --raw=/readyz >/dev/null ||
  { tail -20 "$DIR/apiserver.log"; echo "local-cluster: kube-apiserver did not become ready" >&2; exit 1; }
"$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" apply -f config/rbac-readonly.yaml >&2
TOKEN=$("$BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig" -n kpulse create token kpulse --duration=24h)
kubeconfig kpulse-readonly "$TOKEN" > "$DIR/readonly.kubeconfig"
chmod 600 "$DIR/readonly.kubeconfig"

(($#)) || set -- --follow
cargo run --quiet --release --example populate-cluster -- "$DIR/admin.kubeconfig" "$@" &
pids+=($!)
cat >&2 <<MSG
local-cluster: kube-apiserver $("$BIN/kube-apiserver" --version | cut -d' ' -f2) on https://127.0.0.1:$PORT (etcd :$ETCD_PORT)
  read-only kubeconfig:  $DIR/readonly.kubeconfig   (config/rbac-readonly.yaml's ServiceAccount)
  admin kubeconfig:      $DIR/admin.kubeconfig
  audit log:             $DIR/audit.log
  try:   kpulse --kubeconfig $DIR/readonly.kubeconfig -A
  kubectl: $BIN/kubectl
Ctrl-C stops the cluster.
MSG
wait
