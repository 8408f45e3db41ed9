#!/usr/bin/env bash
# Fuzzes the parsers for a bounded time: scripts/fuzz.sh [SECONDS per target, default 60].
# Needs a nightly toolchain and cargo-fuzz; installs both if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
grep -q '^nightly' <<<"$(rustup toolchain list)" || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# config and kubeconfig build the whole crate once (a few minutes); the others, one file each.
for target in exposition quantity accesslog promql broker scenario config kubeconfig; do
  mkdir -p "fuzz/corpus/$target"
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
