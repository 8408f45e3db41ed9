#!/usr/bin/env bash
# Prometheus at scale: the simulator at N pods, a real Prometheus scraping every kubelet's cAdvisor
# path through it, then (1) one round of kpulse's queries timed with curl, as kpulse sends
# them (in parallel), and (2) kpulse --prometheus under /usr/bin/time -v for a minute, against the
# same run with --usage metrics-api as the baseline.
# Usage: scripts/prometheus-scale.sh [PODS] [HISTORY_SECS]   (needs prometheus, tmux, GNU time, curl)
# HISTORY_SECS (default 900, kpulse's retention): how long Prometheus scrapes before kpulse starts,
# so that its start-up back-fill reads a full window. A short wait hides most of the back-fill's cost.
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
history=${2:-900}
work=$(mktemp -d /tmp/kpulse-prom-scale.XXXXXX)
cargo build --release --locked -q
bin=target/release/kpulse
"$bin" demo --serve --pods "$pods" --kubeconfig-out "$work/kubeconfig" >"$work/sim.log" 2>&1 &
sim=$!
prom=""
trap 'kill $sim $prom 2>/dev/null; tmux kill-session -t kpulse-prom 2>/dev/null; true' EXIT
while [ ! -s "$work/kubeconfig" ]; do sleep 0.2; done
server=$(awk '/server:/ {print $2}' "$work/kubeconfig" | sed 's#http://##')
nodes=$(curl -s "http://$server/api/v1/nodes" | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))')
{
  echo "global: {scrape_interval: 15s, scrape_timeout: 14s}"
  echo "scrape_configs:"
  for n in $nodes; do
    echo "- {job_name: cadvisor-$n, honor_timestamps: false, metrics_path: /api/v1/nodes/$n/proxy/metrics/cadvisor, static_configs: [{targets: ['$server']}]}"
  done
} >"$work/prom.yml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/data" --web.listen-address="127.0.0.1:$port" >"$work/prom.log" 2>&1 &
prom=$!
until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do sleep 0.5; done
echo "waiting $history s while Prometheus scrapes $(echo $nodes | wc -w) kubelets…"
sleep "$history"
c='container!="",container!="POD"'
queries=(
  "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{$c}[1m]))"
  "sum by (namespace, pod, container) (container_memory_working_set_bytes{$c})"
  "sum by (namespace, pod, container) (increase(container_cpu_cfs_throttled_periods_total{$c}[5m])) / sum by (namespace, pod, container) (increase(container_cpu_cfs_periods_total{$c}[5m]))"
  "sum by (namespace, pod) (rate(container_network_receive_bytes_total[1m]))"
  "sum by (namespace, pod) (rate(container_network_transmit_bytes_total[1m]))"
  "sum by (namespace, pod, container) (container_oom_events_total{$c}) > 0"
  "sum by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total[1h]))"
)
# Each alone first (which one costs what), then the round as kpulse sends it.
for i in "${!queries[@]}"; do
  t0=$(date +%s.%N)
  curl -s -G "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=${queries[$i]}" -o /dev/null
  echo "query $i alone: $(echo "$(date +%s.%N) - $t0" | bc) s"
done
start=$(date +%s.%N)
pids=()
for i in "${!queries[@]}"; do
  curl -s -G "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=${queries[$i]}" -o "$work/q$i.json" &
  pids+=($!)
done
wait "${pids[@]}"
end=$(date +%s.%N)
echo "one round of the ${#queries[@]} queries (parallel, as kpulse sends them): $(echo "$end - $start" | bc) s"
ls -l "$work"/q*.json | awk '{s+=$5} END {print "answer size:", s, "bytes"}'
python3 - "$work" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/q*.json")):
    d = json.load(open(f)); print("series:", len(d["data"]["result"]))
PY
measure() {
  tmux new-session -d -s kpulse-prom -x 200 -y 50 "/usr/bin/time -v -o $work/time-$1.txt $bin --kubeconfig $work/kubeconfig -A $2; sleep 2"
  sleep 60
  tmux capture-pane -p -t kpulse-prom | tail -1
  tmux send-keys -t kpulse-prom q
  while [ ! -s "$work/time-$1.txt" ]; do sleep 0.2; done
  sleep 2
  echo "$1: $(grep 'Maximum resident' "$work/time-$1.txt")"
}
measure prometheus "--prometheus http://127.0.0.1:$port"
measure metrics-api "--usage metrics-api"
