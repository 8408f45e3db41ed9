#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without Docker: etcd, kube-apiserver,
# kube-scheduler, kube-controller-manager and kubelet (scripts/k8s-assets.sh), containerd + runc +
# the CNI bridge plugin (Debian), images assembled by scripts/real-node-images.sh, the shop of
# demo/real-node/shop.yaml with real troubles, and nginx in front as the ingress-nginx gateway.
#
#   scripts/real-node.sh up       start it all (as root); prints how to point kpulse at it
#   scripts/real-node.sh down     stop every process, container, cgroup, mount and namespace it made
#   scripts/real-node.sh status   the node and the shop's pods, as the admin
#   scripts/real-node.sh kubectl ARGS…   kubectl as the admin
#
# Everything runs in a network namespace of its own ($KPULSE_NODE_NETNS, default kpulse-node),
# entered with `nsenter --net` (not `ip netns exec`, which remounts /sys and would hide the
# cgroup hierarchies from kubelet and runc). Inside it the control plane listens on 127.0.0.1,
# the node's address is 10.250.0.2 on a veth inside it (kubelet refuses a loopback node IP) and
# pods get 10.244.0.0/24 on the bridge cni0; nothing is reachable from outside the namespace but
# the API server, forwarded to the host's 127.0.0.1:$KPULSE_NODE_PORT (default 16443) by socat.
# The machine's cgroup mounts are used as they are (cgroup v1, cgroupfs driver); kubelet's
# cgroupRoot is /$KPULSE_NODE_NETNS in each hierarchy, made by `up` and removed by `down`, so a
# second node (a test's, beside a developer's) never touches another's containers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

DIR=${KPULSE_NODE_DIR:-/tmp/kpulse-node}
NETNS=${KPULSE_NODE_NETNS:-kpulse-node}
HOST_PORT=${KPULSE_NODE_PORT:-16443}
NODE_NAME=kpulse-node
NODE_IP=10.250.0.2
POD_SUBNET=10.244.0.0/24
API_PORT=6443
ADMIN_TOKEN=kpulse-real-node-admin-token
# Gives up on a step after this long.
WAIT_SECS=${KPULSE_NODE_WAIT:-180}

say() { echo "real-node: $*" >&2; }
die() { say "error: $*"; exit 1; }
in_ns() { nsenter --net="/run/netns/$NETNS" "$@"; }

# background NAME CMD…: starts CMD inside the namespace, its output in logs/NAME.log, its pid kept.
background() {
  local name=$1
  shift
  nsenter --net="/run/netns/$NETNS" "$@" >>"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name"
}

wait_for() { # WHAT CMD…: retries CMD until it succeeds or WAIT_SECS pass
  local what=$1 deadline=$((SECONDS + WAIT_SECS))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what not ready after ${WAIT_SECS}s (logs in $DIR/logs)"
    sleep 0.5
  done
}

# Every v1 hierarchy gets /$NETNS (cpuset needs its cpus and mems copied from the parent);
# kubelet makes kubepods/… below it.
make_cgroup_root() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] && [ ! -f "$h/cgroup.controllers" ] || continue
    mkdir -p "$h$NETNS"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h$NETNS/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$NETNS/cpuset.mems"
    fi
  done
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$DIR/admin-host.kubeconfig" "$@"; }

preflight() {
  [ "$(id -u)" -eq 0 ] || die "run as root: kubelet, containerd and runc need it"
  local missing=()
  for c in containerd containerd-shim-runc-v2 runc ctr socat nsenter ip openssl curl; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  [ ${#missing[@]} -eq 0 ] ||
    die "missing ${missing[*]}: apt-get install -y containerd runc containernetworking-plugins socat iproute2 openssl util-linux curl"
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup hierarchy under /sys/fs/cgroup"
  if [ -n "$(swapon --noheadings 2>/dev/null)" ]; then
    say "swap is on: kubelet is told failSwapOn: false and does not use it for pods"
  fi
}

kubeconfig() { # SERVER TOKEN CA → a kubeconfig on stdout
  printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: real-node\n  cluster:\n    server: %s\n    certificate-authority: %s\ncontexts:\n- name: real-node\n  context:\n    cluster: real-node\n    user: u\ncurrent-context: real-node\nusers:\n- name: u\n  user:\n    token: %s\n' "$1" "$3" "$2"
}

up() {
  preflight
  if [ -f "$DIR/pids/kubelet" ] && kill -0 "$(cat "$DIR/pids/kubelet")" 2>/dev/null; then
    die "a real node is already up in $DIR: scripts/real-node.sh down first"
  fi
  local t0=$SECONDS
  BIN=$(bash scripts/k8s-assets.sh | tail -n 1)
  IMAGES=$(bash scripts/real-node-images.sh | tail -n 1)
  for b in etcd kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: scripts/k8s-assets.sh builds it"
  done
  rm -rf "$DIR"
  mkdir -p "$DIR"/{logs,pids,certs,etcd,containerd,cni/net.d,cni/ipam,kubelet,gateway}
  echo "$BIN" >"$DIR/bin"

  say "network namespace $NETNS: node $NODE_IP, pods $POD_SUBNET"
  ip netns add "$NETNS" 2>/dev/null || true
  ip -n "$NETNS" link set lo up
  # The node's interface: one end of a veth pair kept inside the namespace (this kernel has no
  # dummy links).
  ip -n "$NETNS" link add node0 type veth peer name node0-peer 2>/dev/null || true
  ip -n "$NETNS" addr add "$NODE_IP/24" dev node0 2>/dev/null || true
  ip -n "$NETNS" link set node0-peer up
  ip -n "$NETNS" link set node0 up
  ip -n "$NETNS" route add default dev node0 2>/dev/null || true
  in_ns sysctl -qw net.ipv4.ip_forward=1 || true
  make_cgroup_root

  # ---- control plane
  background etcd "$BIN/etcd" --data-dir="$DIR/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=default=http://127.0.0.1:2380 --unsafe-no-fsync=true
  wait_for etcd in_ns curl -fsS http://127.0.0.1:2379/health

  openssl genrsa -out "$DIR/certs/sa.key" 2048 2>/dev/null
  KUBELET_TOKEN=$(openssl rand -hex 16)
  printf '%s,admin,1,"system:masters"\n%s,system:node:%s,2,"system:nodes"\n' "$ADMIN_TOKEN" "$KUBELET_TOKEN" "$NODE_NAME" >"$DIR/tokens.csv"
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' >"$DIR/audit-policy.yaml"
  background kube-apiserver "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address="$NODE_IP" --secure-port=$API_PORT \
    --etcd-servers=http://127.0.0.1:2379 --cert-dir="$DIR/certs" \
    --authorization-mode=Node,RBAC --token-auth-file="$DIR/tokens.csv" \
    --service-account-key-file="$DIR/certs/sa.key" --service-account-signing-key-file="$DIR/certs/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.96.0.0/24 \
    --kubelet-preferred-address-types=InternalIP --allow-privileged=true \
    --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" --audit-log-mode=blocking
  # The serving certificate the apiserver generates for itself is its own CA.
  wait_for "kube-apiserver's certificate" test -s "$DIR/certs/apiserver.crt"
  kubeconfig "https://127.0.0.1:$API_PORT" "$ADMIN_TOKEN" "$DIR/certs/apiserver.crt" >"$DIR/admin.kubeconfig"
  kubeconfig "https://127.0.0.1:$HOST_PORT" "$ADMIN_TOKEN" "$DIR/certs/apiserver.crt" >"$DIR/admin-host.kubeconfig"
  # The API server on the host's loopback, so kpulse and kubectl run there as a user would.
  socat "TCP-LISTEN:$HOST_PORT,bind=127.0.0.1,fork,reuseaddr" \
    "EXEC:nsenter --net=/run/netns/$NETNS socat STDIO TCP\:127.0.0.1\:$API_PORT" >>"$DIR/logs/socat.log" 2>&1 &
  echo $! >"$DIR/pids/socat"
  wait_for kube-apiserver kubectl_admin get --raw=/readyz

  # kubelet's user is in system:nodes; the Node authorizer grants its pods' objects, RBAC's
  # system:node role (which a cluster binds at bootstrap) the node, its events and leases.
  kubectl_admin create clusterrolebinding kpulse-real-node-kubelets --clusterrole=system:node --group=system:nodes >/dev/null

  background kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$DIR/admin.kubeconfig" --leader-elect=false --secure-port=0 \
    --service-account-private-key-file="$DIR/certs/sa.key" --root-ca-file="$DIR/certs/apiserver.crt" \
    --use-service-account-credentials=false --node-monitor-grace-period=20s
  background kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/admin.kubeconfig" \
    --leader-elect=false --secure-port=0

  # ---- node: containerd with the CRI plugin, the bridge network, kubelet
  cat >"$DIR/containerd/config.toml" <<TOML
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$DIR/containerd/containerd.sock"
[ttrpc]
  address = "$DIR/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "kpulse.local/pause:1"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE, so no process may lower an oom_score_adj below its
  # own: runc's "failed to update /proc/self/oom_score_adj: Permission denied" for the sandbox's
  # -998. Containerd then keeps every score at or above its own (0), as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
TOML
  cat >"$DIR/cni/net.d/10-kpulse.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "kpulse", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$DIR/cni/ipam"}}]}
JSON
  background containerd containerd --config "$DIR/containerd/config.toml"
  ctr() { command ctr --address "$DIR/containerd/containerd.sock" -n k8s.io "$@"; }
  wait_for containerd ctr version
  for img in pause workload nginx; do
    ctr images import --snapshotter overlayfs "$IMAGES/$img.tar" >/dev/null || die "ctr images import $img failed"
  done
  say "images imported: $(ctr images ls -q | grep kpulse.local | tr '\n' ' ')"

  cat >"$DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has only cgroup v1; kubelet 1.35+ refuses it unless told (KEP-5573).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NETNS
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# Reached only from inside the namespace, by the API server's node proxy.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
failSwapOn: false
# Pods get a cluster DNS address (no DNS server answers: the shop calls by address), as on a
# cluster; without one kubelet warns MissingClusterDNS for every pod.
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: ""
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
  kubeconfig "https://127.0.0.1:$API_PORT" "$KUBELET_TOKEN" "$DIR/certs/apiserver.crt" >"$DIR/kubelet/kubeconfig"
  background kubelet "$BIN/kubelet" --config="$DIR/kubelet/config.yaml" --kubeconfig="$DIR/kubelet/kubeconfig" \
    --root-dir="$DIR/kubelet/root" --cert-dir="$DIR/kubelet/pki" --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" --containerd="$DIR/containerd/containerd.sock" --v=1
  wait_for "node $NODE_NAME Ready" kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  say "node $NODE_NAME Ready after $((SECONDS - t0))s"

  shop
  say "up in $((SECONDS - t0))s. kpulse as the read-only ServiceAccount:"
  say "  kpulse --kubeconfig $DIR/kpulse.kubeconfig -A"
  say "kubectl as the admin: scripts/real-node.sh kubectl get pods -A"
}

# The read-only identity, the shop, its gateway and the gateway's config loop.
shop() {
  kubectl_admin apply -f config/rbac-readonly.yaml >/dev/null
  local token
  token=$(kubectl_admin -n kpulse create token kpulse --duration=24h)
  kubeconfig "https://127.0.0.1:$HOST_PORT" "$token" "$DIR/certs/apiserver.crt" >"$DIR/kpulse.kubeconfig"
  chmod 600 "$DIR/kpulse.kubeconfig"
  gateway_config >"$DIR/gateway/nginx.conf"
  sed "s|@GATEWAY_DIR@|$DIR/gateway|g; s|@NODE_IP@|$NODE_IP|g" demo/real-node/shop.yaml | kubectl_admin apply -f - >/dev/null
  # The ingress controller's job: render nginx's upstreams from the Endpoints and reload it.
  bash "$0" gateway-sync >>"$DIR/logs/gateway-sync.log" 2>&1 &
  echo $! >"$DIR/pids/gateway-sync"
  wait_for "the gateway pod" kubectl_admin -n ingress-nginx wait --for=condition=Ready pod -l app.kubernetes.io/name=ingress-nginx --timeout=2s
}

# nginx.conf on stdout: ingress-nginx's upstreaminfo log format, one upstream per shop Service
# named as ingress-nginx names it (<namespace>-<service>-<port>), routed by path /<service>/.
gateway_config() {
  cat <<'NGINX'
user nobody nogroup;
worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 4096; }
http {
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id';
  access_log /dev/stdout upstreaminfo;
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  proxy_connect_timeout 2s;
  proxy_read_timeout 10s;
NGINX
  local locations=""
  local svc addrs
  while read -r svc addrs; do
    [ -n "$svc" ] || continue
    local up="shop-$svc-80"
    if [ -n "$addrs" ]; then
      echo "  upstream $up {"
      for a in $addrs; do echo "    server $a:8080 max_fails=0;"; done
      echo "    keepalive 16;"
      echo "  }"
      locations+="    location /$svc/ { set \$proxy_upstream_name $up; proxy_pass http://$up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"$'\n'
    else
      # No ready endpoint: ingress-nginx answers 503 itself.
      locations+="    location /$svc/ { set \$proxy_upstream_name $up; return 503; }"$'\n'
    fi
  done < <(endpoints)
  echo "  server {"
  echo "    listen 80;"
  printf '%s' "$locations"
  echo "    location / { set \$proxy_upstream_name upstream-default-backend; return 404; }"
  echo "  }"
  echo "}"
}

# "service addr addr…" per shop Service, from its EndpointSlices' ready addresses.
endpoints() {
  [ -s "$DIR/admin-host.kubeconfig" ] || return 0
  kubectl_admin -n shop get endpointslices -o go-template='{{range .items}}{{index .metadata.labels "kubernetes.io/service-name"}}{{range .endpoints}}{{if .conditions.ready}} {{index .addresses 0}}{{end}}{{end}}{{"\n"}}{{end}}' 2>/dev/null |
    awk 'NF { a[$1] = a[$1]; for (i = 2; i <= NF; i++) a[$1] = a[$1] " " $i } END { for (s in a) print s a[s] }' | sort
}

gateway_sync() {
  BIN=$(cat "$DIR/bin")
  local last="" now
  while :; do
    now=$(gateway_config)
    if [ "$now" != "$last" ] && [ -n "$(endpoints)" ]; then
      printf '%s\n' "$now" >"$DIR/gateway/nginx.conf.new"
      mv "$DIR/gateway/nginx.conf.new" "$DIR/gateway/nginx.conf"
      local master
      master=$(pgrep -f "nginx: master process /usr/sbin/nginx -c /etc/kpulse-gateway/" || true)
      if [ -n "$master" ]; then
        kill -HUP $master && echo "$(date +%T) reloaded nginx ($(endpoints | tr '\n' ';'))"
        last=$now
      fi
    fi
    sleep 2
  done
}

status() {
  BIN=$(cat "$DIR/bin" 2>/dev/null) || die "no real node in $DIR"
  kubectl_admin get nodes -o wide
  kubectl_admin get pods -A -o wide
}

kubectl_cmd() {
  BIN=$(cat "$DIR/bin" 2>/dev/null) || die "no real node in $DIR"
  kubectl_admin "$@"
}

# Stops everything `up` started, then what kubelet and containerd left: container processes (by
# their cgroups), mounts under $DIR, this node's cgroups and the namespace. It goes on past any
# error: a cleanup that stops half-way leaves an API server and containerd running.
down() {
  set +e
  local p g pid
  for p in gateway-sync socat kubelet kube-scheduler kube-controller-manager; do
    [ -f "$DIR/pids/$p" ] && kill "$(cat "$DIR/pids/$p")" 2>/dev/null
  done
  # Containers: the shims first, then whatever is still in this node's cgroups.
  pkill -f "containerd-shim-runc-v2 .*-address $DIR/containerd/containerd.sock" 2>/dev/null
  for _ in 1 2 3; do
    for g in /sys/fs/cgroup/*/"$NETNS"; do
      [ -d "$g" ] || continue
      for pid in $(find "$g" \( -name tasks -o -name cgroup.procs \) -exec cat {} + 2>/dev/null); do
        kill -9 "$pid" 2>/dev/null
      done
    done
    sleep 0.5
  done
  for p in containerd kube-apiserver etcd; do
    [ -f "$DIR/pids/$p" ] && kill "$(cat "$DIR/pids/$p")" 2>/dev/null
  done
  # Anything else started for this node names its directory on its command line.
  sleep 1
  pkill -9 -f -- "$DIR/" 2>/dev/null
  sleep 0.5
  # Mounts (overlay rootfs, shm, volumes, pod netns) under $DIR, deepest first.
  grep -F " $DIR/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for g in /sys/fs/cgroup/*/"$NETNS"; do
    [ -d "$g" ] && find "$g" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip netns delete "$NETNS" 2>/dev/null
  if [ -z "${KPULSE_NODE_KEEP:-}" ]; then
    rm -rf "$DIR" 2>/dev/null || say "some of $DIR could not be removed (busy mounts?)"
  fi
  say "down"
  return 0
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kubectl) shift; kubectl_cmd "$@" ;;
  gateway-sync) gateway_sync ;;
  *) echo "usage: $0 up|down|status|kubectl ARGS…" >&2; exit 2 ;;
esac
