#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages), then runs every test with
# real components required, so a missing one fails loudly instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v tmux >/dev/null 2>&1 || packages+=(tmux)
if ((${#packages[@]})); then
  echo "scripts/test.sh: installing ${packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

export KPULSE_REQUIRE_REAL=1
cargo test --locked --all-targets "$@"
