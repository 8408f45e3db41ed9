#!/usr/bin/env bash
# Scale against the real kube-apiserver: N pods written through the API (scripts/local-cluster.sh,
# no kubelet), then kpulse as the read-only ServiceAccount in a real terminal under
# /usr/bin/time -v. Prints the time to the full table, idle CPU, peak RSS and, from the
# apiserver's audit log, every request kpulse made (by verb and path).
# Usage: scripts/apiserver-scale.sh [PODS]   (needs tmux and GNU time: apt-get install -y tmux time)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
work=$(mktemp -d /tmp/kpulse-apiscale.XXXXXX)
cargo build --release --locked -q --bin kpulse --example populate-cluster
bin=target/release/kpulse
KPULSE_CLUSTER_DIR=$work scripts/local-cluster.sh --pods "$pods" >"$work/cluster.log" 2>&1 &
cluster=$!
trap 'tmux kill-session -t kpulse-apiscale 2>/dev/null; kill $cluster 2>/dev/null; pkill -f "$work" 2>/dev/null; true' EXIT
until grep -q "populate-cluster: .* written" "$work/cluster.log"; do
  kill -0 $cluster 2>/dev/null || { cat "$work/cluster.log"; exit 1; }
  sleep 1
done
grep "populate-cluster:" "$work/cluster.log"
expected=$(( (pods - 18) * 3 + 18 ))
source scripts/measure-tui.sh
measure_tui "$bin" "$work/readonly.kubeconfig" "$expected" 30 "$work" kpulse-apiscale
echo "requests by kpulse (audit log, user system:serviceaccount:kpulse:kpulse):"
python3 - "$work/audit.log" <<'PY'
import collections, json, re, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("stage") != "ResponseComplete" or e["user"]["username"] != "system:serviceaccount:kpulse:kpulse":
        continue
    path = re.sub(r"/(pods|nodes)/[^/?]+", r"/\1/NAME", e["requestURI"].split("?")[0])
    query = e["requestURI"].split("?", 1)[1] if "?" in e["requestURI"] else ""
    cont = " (continue page)" if "continue=" in query else ""
    seen[(e["verb"], path + cont, e["responseStatus"]["code"])] += 1
for (verb, path, code), n in sorted(seen.items()):
    print(f"  {n:5d}  {verb:5s} {code} {path}")
PY
