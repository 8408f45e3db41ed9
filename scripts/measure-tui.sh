# Sourced by the scale scripts: runs kpulse against KUBECONFIG in a real terminal (tmux) under
# /usr/bin/time -v and prints the time until the table holds EXPECTED containers (the title's
# "shown/total rows"), its idle CPU over IDLE_SECS, and its peak memory.
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
  t0=$(ticks); sleep "$idle"; t1=$(ticks)
  hz=$(getconf CLK_TCK)
  echo "idle CPU over $idle s: $(echo "scale=2; ($t1 - $t0) * 100 / ($hz * $idle)" | bc) % of one core"
  tmux send-keys -t "$session" q
  while [ ! -s "$work/time.txt" ]; do sleep 0.2; done
  grep -E "Maximum resident set size|Elapsed|Percent of CPU" "$work/time.txt"
}
