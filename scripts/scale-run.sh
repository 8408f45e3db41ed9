#!/usr/bin/env bash
# Scale run: the simulator at N pods (three containers per added pod) in one process, kpulse
# against it in a real terminal (tmux) in another, measured with /usr/bin/time -v.
# Prints: time until the whole table is shown, idle CPU over a minute, peak RSS of kpulse, and the
# requests and bytes a minute kpulse sent through the (simulated) API server, by kind.
# Usage: scripts/scale-run.sh [PODS]   (needs tmux, curl and GNU time: apt-get install -y tmux curl time)
# KPULSE_BIN=path measures another kpulse build (e.g. an older commit) against the same simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
work=$(mktemp -d /tmp/kpulse-scale.XXXXXX)
cargo build --release --locked -q
sim_bin=target/release/kpulse
bin=${KPULSE_BIN:-$sim_bin}
"$sim_bin" demo --serve --pods "$pods" --kubeconfig-out "$work/kubeconfig" >"$work/sim.log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; tmux kill-session -t kpulse-scale 2>/dev/null; true' EXIT
while [ ! -s "$work/kubeconfig" ]; do sleep 0.2; done
# The table is complete when the title's total reaches every container.
expected=$(( (pods - 18) * 3 + 18 ))
SIM_URL=$(sed -n 's/^ *server: //p' "$work/kubeconfig" | head -1)
export SIM_URL
source scripts/measure-tui.sh
measure_tui "$bin" "$work/kubeconfig" "$expected" 60 "$work" kpulse-scale
