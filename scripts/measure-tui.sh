# Sourced by the scale scripts: runs kpulse against KUBECONFIG in a real terminal (tmux) under
# /usr/bin/time -v and prints the time until the table holds EXPECTED containers (the title's
# "shown/total rows"), its idle CPU over IDLE_SECS, and its peak memory. With SIM_URL set (the
# simulator's address), also what kpulse asked of the API server over those seconds, per minute.
#   measure_tui BIN KUBECONFIG EXPECTED IDLE_SECS WORKDIR SESSION
measure_tui() {
  local bin=$1 kubeconfig=$2 expected=$3 idle=$4 work=$5 session=$6
  local start shown line pid t0 t1 hz
  start=$(date +%s.%N)
  tmux new-session -d -s "$session" -x 200 -y 50 \
    "/usr/bin/time -v -o $work/time.txt $bin --kubeconfig $kubeconfig -A; sleep 5"
  while true; do
    line=$(tmux capture-pane -p -t "$session" | head -1)
    if [[ "$line" =~ ([0-9]+)/([0-9]+)\ rows ]] && [ "${BASH_REMATCH[2]}" -ge "$expected" ]; then break; fi
    sleep 0.1
  done
  shown=$(date +%s.%N)
  echo "containers: ${BASH_REMATCH[2]} (expected $expected)"
  echo "start to full table: $(echo "$shown - $start" | bc) s (includes the paged LIST of all pods)"
  pid=$(pgrep -f "^$bin --kubeconfig $kubeconfig" | head -1)
  ticks() { awk '{print $14 + $15}' /proc/"$pid"/stat; }
  sleep 5
  [ -n "${SIM_URL:-}" ] && curl -s "$SIM_URL/sim/api-traffic" >"$work/api-before.json"
  t0=$(ticks); sleep "$idle"; t1=$(ticks)
  [ -n "${SIM_URL:-}" ] && curl -s "$SIM_URL/sim/api-traffic" >"$work/api-after.json"
  hz=$(getconf CLK_TCK)
  echo "idle CPU over $idle s: $(echo "scale=2; ($t1 - $t0) * 100 / ($hz * $idle)" | bc) % of one core"
  if [ -n "${SIM_URL:-}" ]; then
    python3 - "$work/api-before.json" "$work/api-after.json" "$idle" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
per_min = 60 / float(sys.argv[3])
print(f"through the API server: {(after['requests'] - before['requests']) * per_min:.0f} requests/min, "
      f"{(after['bytes'] - before['bytes']) * per_min / 1e6:.1f} MB/min")
for kind, a in after["by_kind"].items():
    b = before["by_kind"][kind]
    print(f"  {kind}: {(a['requests'] - b['requests']) * per_min:.0f} requests/min, "
          f"{(a['bytes'] - b['bytes']) * per_min / 1e6:.2f} MB/min")
PY
  fi
  tmux send-keys -t "$session" q
  while [ ! -s "$work/time.txt" ]; do sleep 0.2; done
  grep -E "Maximum resident set size|Elapsed|Percent of CPU" "$work/time.txt"
}
