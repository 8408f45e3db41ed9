#!/usr/bin/env bash
# Scale run: the simulator at N pods (three containers per added pod) in one process, kpulse
# against it in a real terminal (tmux) in another, measured with /usr/bin/time -v.
# Prints: time until the whole table is shown, idle CPU over a minute, peak RSS of kpulse.
# Usage: scripts/scale-run.sh [PODS]   (needs tmux and GNU time: apt-get install -y tmux time)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
work=$(mktemp -d /tmp/kpulse-scale.XXXXXX)
cargo build --release --locked -q
bin=target/release/kpulse
"$bin" demo --serve --pods "$pods" --kubeconfig-out "$work/kubeconfig" >"$work/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; tmux kill-session -t kpulse-scale 2>/dev/null; true' EXIT
while [ ! -s "$work/kubeconfig" ]; do sleep 0.2; done
session=kpulse-scale
start=$(date +%s.%N)
tmux new-session -d -s $session -x 200 -y 50 \
  "/usr/bin/time -v -o $work/time.txt $bin --kubeconfig $work/kubeconfig -A; sleep 5"
# The title shows "shown/total rows"; the table is complete when total stops growing at the full count.
expected=$(( (pods - 18) * 3 + 18 ))
while true; do
  line=$(tmux capture-pane -p -t $session | head -1)
  if [[ "$line" =~ ([0-9]+)/([0-9]+)\ rows ]] && [ "${BASH_REMATCH[2]}" -ge "$expected" ]; then break; fi
  sleep 0.1
done
shown=$(date +%s.%N)
echo "containers: ${BASH_REMATCH[2]} (expected $expected)"
echo "start to full table: $(echo "$shown - $start" | bc) s (includes the paged LIST of all pods)"
pid=$(pgrep -f "^$bin --kubeconfig $work/kubeconfig" | head -1)
ticks() { awk '{print $14 + $15}' /proc/"$pid"/stat; }
sleep 5
t0=$(ticks); sleep 60; t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "idle CPU over 60 s: $(echo "scale=2; ($t1 - $t0) * 100 / ($hz * 60)" | bc) % of one core"
tmux send-keys -t $session q
while [ ! -s "$work/time.txt" ]; do sleep 0.2; done
grep -E "Maximum resident set size|Elapsed|Percent of CPU" "$work/time.txt"
