#!/usr/bin/env bash
# Builds Thanos (github.com/thanos-io/thanos) from the Go module proxy for the metrics-backend
# tests: Thanos Query over Prometheus servers with sidecars. Not packaged for Debian, and no
# binary can be downloaded on these machines.
#
# Built once per machine and cached by version under $KPULSE_K8S_CACHE (default
# ~/.cache/kpulse/thanos-<version>); a second run only checks the cache. Prints the binary's path
# on its last line of stdout: THANOS=$(scripts/thanos-assets.sh | tail -1).
#
# Why not `go install …@version`: Thanos' go.mod has `replace` lines (a gRPC fork among them),
# which only apply when building inside the module itself, so the build runs in its source tree.
# v0.41.0: the newest release whose go.mod asks for a Go this machine has (v0.42 wants ≥ 1.26.10).
set -euo pipefail

THANOS_VERSION=${THANOS_VERSION:-v0.41.0}
CACHE_ROOT=${KPULSE_K8S_CACHE:-$HOME/.cache/kpulse}
DIR="$CACHE_ROOT/thanos-$THANOS_VERSION"
BIN="$DIR/bin/thanos"

say() { echo "thanos-assets: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Output captured first: `cmd | grep -q` under pipefail fails if the command dies of SIGPIPE.
have() { local out; out=$("$BIN" --version 2>&1) || return 1; grep -q "version ${THANOS_VERSION#v} " <<<"$out"; }
if have; then
  say "cached: $BIN (Thanos $THANOS_VERSION)"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || die "the Go toolchain is missing (Go ≥ 1.25 is needed)"

mkdir -p "$DIR/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
# Private caches, removed after a successful build (about 1.5 GB): the binary is what is kept.
export GOMODCACHE="$DIR/go-mod-cache" GOCACHE="$DIR/go-build-cache"
start=$(date +%s)
say "fetching github.com/thanos-io/thanos@$THANOS_VERSION and its modules…"
src=$(go mod download -json "github.com/thanos-io/thanos@$THANOS_VERSION" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if "Error" in d else print(d["Dir"])') ||
  die "the module proxy does not serve github.com/thanos-io/thanos@$THANOS_VERSION"
say "compiling (about 3 minutes on 2 cores)…"
ld="-s -w -X github.com/prometheus/common/version.Version=${THANOS_VERSION#v} -X github.com/prometheus/common/version.Branch=release"
# The tags of Thanos' own release build (.promu.yml): without slicelabels its gRPC code, which
# reinterprets Prometheus' labels in place, sizes messages from garbage and panics.
(cd "$src" && go build -trimpath -tags netgo,slicelabels -ldflags "$ld" -o "$BIN" ./cmd/thanos) >&2 ||
  die "building Thanos failed: a module it needs is named above"
have || die "built, but $BIN does not report version ${THANOS_VERSION#v}"
if [ -z "${KPULSE_KEEP_GO_CACHE:-}" ]; then
  go clean -cache -modcache >/dev/null 2>&1 || true
  rm -rf "$GOMODCACHE" "$GOCACHE"
fi
say "done in $(( $(date +%s) - start )) s: $BIN"
echo "$BIN"
