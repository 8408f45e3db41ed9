#!/usr/bin/env bash
# Builds the kubectl plugin archive krew installs (kubectl-pulse + LICENSE) for this machine's
# platform into dist/, and renders config/krew/pulse.yaml for it with the archive's sha256, so an
# unreleased build installs as a release would:
#   kubectl krew install --manifest=dist/pulse.yaml --archive=dist/kubectl-pulse-linux-amd64.tar.gz
# KPULSE_PLUGIN_BIN: package this kubectl-pulse instead of building a release one (the tests do);
# KPULSE_DIST: output directory instead of dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
os=$(uname -s | tr '[:upper:]' '[:lower:]')
case $(uname -m) in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
version="v$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)"
dist=${KPULSE_DIST:-dist}
plugin=${KPULSE_PLUGIN_BIN:-}
if [ -z "$plugin" ]; then
  cargo build --release --locked --bin kubectl-pulse
  plugin=target/release/kubectl-pulse
fi
mkdir -p "$dist/stage"
cp "$plugin" "$dist/stage/kubectl-pulse"
cp LICENSE "$dist/stage/"
archive="$dist/kubectl-pulse-$os-$arch.tar.gz"
tar -czf "$archive" -C "$dist/stage" kubectl-pulse LICENSE
rm -rf "$dist/stage"
sha=$(sha256sum "$archive" | cut -d' ' -f1)
python3 - "$version" "$os" "$arch" "$sha" "$archive" "$dist/pulse.yaml" <<'PY'
import re, sys
version, os_, arch, sha, archive, manifest = sys.argv[1:]
text = open("config/krew/pulse.yaml").read()
head, platforms = text.split("  platforms:\n")
entries = re.split(r"(?m)^(?=    - selector:)", platforms)
mine = [e for e in entries if f"os: {os_}, arch: {arch}" in e]
if not mine:
    sys.exit(f"config/krew/pulse.yaml has no platform for {os_}/{arch}")
entry = re.sub(r'\{\{ addURIAndSha "([^"]+)" \.TagName \}\}', lambda m: f"uri: {m.group(1)}\n      sha256: {sha}", mine[0])
out = (head + "  platforms:\n" + entry).replace("{{ .TagName }}", version)
open(manifest, "w").write(out)
print(f"krew-package: {archive} (sha256 {sha}) and {manifest} for {version} {os_}/{arch}")
PY
