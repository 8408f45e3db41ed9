#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages), then runs every test with
# real components required, so a missing one fails loudly instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
# tmux: a real terminal for the scripted session; prometheus and the node exporter: a real server
# and real exposition text for the Prometheus source and the parser.
command -v tmux >/dev/null 2>&1 || packages+=(tmux)
# man: the man page kpulse prints is rendered as a user reads it.
command -v man >/dev/null 2>&1 || packages+=(man-db)
# pgrep: the terminal tests find kpulse's pid in a tmux pane to signal it.
command -v pgrep >/dev/null 2>&1 || packages+=(procps)
command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || packages+=(prometheus-node-exporter)
# VictoriaMetrics and vmauth: a second engine of the Prometheus query API, and a token in front.
command -v victoria-metrics >/dev/null 2>&1 || packages+=(victoria-metrics)
# Real gateways writing real access logs: nginx (ingress-nginx's log format), HAProxy, Caddy.
# They live in /usr/sbin, so look there too.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || packages+=(nginx-light)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || packages+=(haproxy)
command -v caddy >/dev/null 2>&1 || packages+=(caddy)
# The time zone database: a HAProxy log written in New York is read in its zone.
[ -e /usr/share/zoneinfo/America/New_York ] || packages+=(tzdata)
# A real RabbitMQ (its Prometheus plugin ships with it) and the AMQP command-line client the
# tests produce and consume with, for the Events view.
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || packages+=(rabbitmq-server)
command -v amqp-publish >/dev/null 2>&1 || packages+=(amqp-tools)
# openssl: the service-account signing key of the real kube-apiserver the tests start.
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# The real node (scripts/real-node.sh): containerd, runc and the CNI plugins under the kubelet,
# socat forwarding its API server to the host's loopback, ip and nsenter for its namespace.
command -v containerd >/dev/null 2>&1 || packages+=(containerd)
command -v runc >/dev/null 2>&1 || packages+=(runc)
[ -x /usr/lib/cni/bridge ] || packages+=(containernetworking-plugins)
command -v socat >/dev/null 2>&1 || packages+=(socat)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || packages+=(iproute2)
command -v nsenter >/dev/null 2>&1 || packages+=(util-linux)
if ((${#packages[@]})); then
  echo "scripts/test.sh: installing ${packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# A real etcd, kube-apiserver, kubectl, kube-scheduler, kube-controller-manager and kubelet, built
# from the Go module proxy once per machine and cached (~/.cache/kpulse/k8s-VERSION; about 6 to 10
# minutes the first time). If the build fails the
# real-apiserver tests fail and say so; the rest still run.
if KPULSE_K8S_BIN=$(bash scripts/k8s-assets.sh | tail -n 1); then
  export KPULSE_K8S_BIN
else
  echo "scripts/test.sh: building the Kubernetes control plane failed (see above)" >&2
fi

# Thanos (Query and sidecars over two Prometheus replicas), built the same way and cached
# (~/.cache/kpulse/thanos-VERSION; about 4 minutes the first time).
if KPULSE_THANOS_BIN=$(bash scripts/thanos-assets.sh | tail -n 1); then
  export KPULSE_THANOS_BIN
else
  echo "scripts/test.sh: building Thanos failed (see above)" >&2
fi

export KPULSE_REQUIRE_REAL=1
cargo test --locked --all-targets "$@"
