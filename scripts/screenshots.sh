#!/usr/bin/env bash
# The dashboard's screens as SVG images, from the real binary in a real terminal: `kpulse demo`
# in tmux, each view captured with its colours (capture-pane -e) and drawn on a character grid by
# scripts/ansi_to_svg.py. Regenerates screenshots/*.svg (the README shows dashboard.svg) and
# screenshots/demo-session.svg, an animated recording of the same session (a frame a step).
# Usage: scripts/screenshots.sh   (needs tmux and python3)
#   KPULSE_BIN  the binary (default: a release build of this checkout)
#   OUT         where the images go (default: screenshots)
#   SETTLE      seconds of simulated life before the first capture (default 20: CPU, traffic and
#               the sparklines filled in)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-screenshots}
settle=${SETTLE:-20}
bin=${KPULSE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -q
  bin=target/release/kpulse
fi
mkdir -p "$out"
session="kpulse-shots-$$"
config=$(mktemp -d)
frames=$(mktemp -d)
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$config" "$frames"' EXIT
# A config of its own: the user's keys or theme must not change the pictures.
tmux new-session -d -s "$session" -x 160 -y 45 "XDG_CONFIG_HOME=$config $bin demo"

wait_for() { # TEXT SECONDS
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    tmux capture-pane -p -t "$session" | grep -qF -- "$1" && return 0
    sleep 0.2
  done
  echo "screenshots: '$1' not on screen after $2 s:" >&2
  tmux capture-pane -p -t "$session" >&2
  exit 1
}
frame() { # the screen now, as the recording's next frame
  tmux capture-pane -e -p -t "$session" >"$frames/$(printf %02d "$(ls "$frames" | wc -l)").ansi"
}
shot() { # NAME TITLE: an image, and a frame of the recording
  frame
  python3 scripts/ansi_to_svg.py "$2" <"$(ls "$frames"/*.ansi | tail -n 1)" >"$out/$1.svg"
  echo "$out/$1.svg"
}
keys() { # one at a time, as a person types
  local key
  for key in "$@"; do
    tmux send-keys -t "$session" "$key"
    sleep 0.4
  done
  sleep 1
}

wait_for "CPU-starved" 60
sleep "$settle"
shot dashboard "kpulse demo: containers ranked by health, the hotspot strip above them"
keys j j
frame
keys 4
wait_for "ranked by score" 10
shot hotspots "kpulse demo: the hotspots, each with its evidence"
keys j
frame
keys 3
wait_for "streams" 10
shot traffic "kpulse demo: traffic per service from the gateway's access log"
keys t
frame
keys 2
wait_for "CPU CAP/ALLOC" 10
shot nodes "kpulse demo: nodes, their capacity, requests and use"
keys 1 / payment Enter Enter
wait_for "Container " 10
shot detail "kpulse demo: one container's detail pane, charts over the retained window"
keys q
python3 scripts/ansi_to_svg.py "kpulse demo: a short session, one frame a step" "$frames"/*.ansi >"$out/demo-session.svg"
echo "$out/demo-session.svg"
