#!/usr/bin/env bash
# Prometheus at scale: the simulator at N pods, a real Prometheus and a real VictoriaMetrics both
# scraping every kubelet's cAdvisor path through it, then for each engine (1) one round of
# kpulse's queries timed with curl, as kpulse sends them (in parallel), and (2) kpulse
# --prometheus under /usr/bin/time -v for a minute; and the same run with --usage metrics-api as
# the baseline. Both engines ingest at once, side by side in one run.
# Usage: scripts/prometheus-scale.sh [PODS] [HISTORY_SECS]
#   (needs prometheus, victoria-metrics, tmux, GNU time, curl, bc)
# HISTORY_SECS (default 900, kpulse's retention): how long the engines scrape before kpulse starts,
# so that its start-up back-fill reads a full window. A short wait hides most of the back-fill's cost.
# ENGINES="prometheus victoria-metrics" (the default) picks the engines.
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
history=${2:-900}
engines=${ENGINES:-prometheus victoria-metrics}
work=$(mktemp -d /tmp/kpulse-prom-scale.XXXXXX)
cargo build --release --locked -q
bin=target/release/kpulse
"$bin" demo --serve --pods "$pods" --kubeconfig-out "$work/kubeconfig" >"$work/sim.log" 2>&1 &
pids=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; tmux kill-session -t kpulse-prom 2>/dev/null || true' EXIT
while [ ! -s "$work/kubeconfig" ]; do sleep 0.2; done
server=$(awk '/server:/ {print $2}' "$work/kubeconfig" | sed 's#http://##')
nodes=$(curl -s "http://$server/api/v1/nodes" | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))')
{
  echo "global: {scrape_interval: 15s, scrape_timeout: 14s}"
  echo "scrape_configs:"
  for n in $nodes; do
    echo "- {job_name: cadvisor-$n, honor_timestamps: false, metrics_path: /api/v1/nodes/$n/proxy/metrics/cadvisor, static_configs: [{targets: ['$server']}]}"
  done
} >"$work/scrape.yml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A url
for engine in $engines; do
  port=$(free_port)
  case $engine in
    prometheus)
      prometheus --config.file="$work/scrape.yml" --storage.tsdb.path="$work/prom-data" \
        --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
      ready=/-/ready ;;
    victoria-metrics)
      # Its default -search.latencyOffset (30 s) is kept: what a user's VictoriaMetrics does.
      victoria-metrics -httpListenAddr="127.0.0.1:$port" -storageDataPath="$work/vm-data" \
        -promscrape.config="$work/scrape.yml" -loggerLevel=ERROR >"$work/victoria-metrics.log" 2>&1 &
      ready=/health ;;
    *) echo "unknown engine $engine" >&2; exit 2 ;;
  esac
  pids+=($!)
  url[$engine]="http://127.0.0.1:$port"
  until curl -sf "${url[$engine]}$ready" >/dev/null; do sleep 0.5; done
done
echo "waiting $history s while $engines scrape $(echo $nodes | wc -w) kubelets…"
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
for engine in $engines; do
  base=${url[$engine]}
  # Each alone first (which one costs what), then the round as kpulse sends it.
  for i in "${!queries[@]}"; do
    t0=$(date +%s.%N)
    curl -s -G "$base/api/v1/query" --data-urlencode "query=${queries[$i]}" -o /dev/null
    echo "$engine: query $i alone: $(echo "$(date +%s.%N) - $t0" | bc) s"
  done
  for round in 1 2 3; do
    start=$(date +%s.%N)
    curls=()
    for i in "${!queries[@]}"; do
      curl -s -G "$base/api/v1/query" --data-urlencode "query=${queries[$i]}" -o "$work/$engine-q$i.json" &
      curls+=($!)
    done
    wait "${curls[@]}"
    echo "$engine: round $round of the ${#queries[@]} queries (parallel, as kpulse sends them): $(echo "$(date +%s.%N) - $start" | bc) s"
  done
  ls -l "$work/$engine"-q*.json | awk -v e="$engine" '{s+=$5} END {print e ": answer size:", s, "bytes"}'
  python3 - "$work" "$engine" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/" + sys.argv[2] + "-q*.json")):
    d = json.load(open(f)); print(sys.argv[2] + ": series:", len(d["data"]["result"]))
PY
done
measure() {
  tmux new-session -d -s kpulse-prom -x 200 -y 50 "/usr/bin/time -v -o $work/time-$1.txt $bin --kubeconfig $work/kubeconfig -A $2; sleep 2"
  sleep 60
  tmux capture-pane -p -t kpulse-prom | tail -1
  tmux send-keys -t kpulse-prom q
  while [ ! -s "$work/time-$1.txt" ]; do sleep 0.2; done
  sleep 2
  echo "$1: $(grep 'Maximum resident' "$work/time-$1.txt")"
}
for engine in $engines; do
  measure "$engine" "--prometheus ${url[$engine]}"
done
measure metrics-api "--usage metrics-api"
