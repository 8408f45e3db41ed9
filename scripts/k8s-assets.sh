#!/usr/bin/env bash
# Builds the real Kubernetes kpulse's tests run against: etcd, kube-apiserver and kubectl, and for
# the real-node tier kube-scheduler, kube-controller-manager and kubelet, from the Go module proxy
# (no binary can be downloaded on these machines).
#
# Built once per machine and cached by version under $KPULSE_K8S_CACHE (default
# ~/.cache/kpulse/k8s-<version>); a second run only checks the cache. Prints the bin directory
# on its last line of stdout, so callers can do: BIN=$(scripts/k8s-assets.sh | tail -1).
#
# Why wrapper modules: k8s.io/kubernetes requires every staging module at v0.0.0 and maps them
# with local `replace` lines a consumer never sees, so `go install …@v1.x` cannot work. The
# wrapper requires k8s.io/kubernetes at one version and replaces each staging module by its
# published v0.<minor>.<patch> tag, the list generated from that version's own go.mod.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.13}
# krew (as the kubectl plugin kubectl-krew): the tests install kubectl-pulse from its manifest.
KREW_VERSION=${KREW_VERSION:-v0.4.3}
CACHE_ROOT=${KPULSE_K8S_CACHE:-$HOME/.cache/kpulse}
DIR="$CACHE_ROOT/k8s-$K8S_VERSION"
BIN="$DIR/bin"
PROXY=${GOPROXY:-https://proxy.golang.org}
PROXY=${PROXY%%,*}

say() { echo "k8s-assets: $*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "the Go toolchain is missing (Go ≥ 1.26 is needed: apt-get install golang-go is too old on bookworm; use the machine's Go)"

# Whether a command's output matches: captured first, because `cmd | grep -q` under pipefail fails
# when grep stops reading at its match and the command dies of SIGPIPE writing the rest (a CI run
# rebuilt a cached etcd and krew, then died, on exactly that).
says() { local pattern=$1 out; shift; out=$("$@" 2>/dev/null) || return 1; grep -q -- "$pattern" <<<"$out"; }
have_etcd() { says "etcd Version: ${ETCD_VERSION#v}" "$BIN/etcd" --version; }
# Every binary from k8s.io/kubernetes; built in one `go build` so they share compiled packages.
KUBE_CMDS="kube-apiserver kubectl kube-scheduler kube-controller-manager kubelet"
have_kube() {
  local c
  for c in $KUBE_CMDS; do [ -x "$BIN/$c" ] || return 1; done
  says "Kubernetes $K8S_VERSION" "$BIN/kube-apiserver" --version &&
    says "Kubernetes $K8S_VERSION" "$BIN/kubelet" --version
}
have_krew() { says "GitTag *$KREW_VERSION" env KREW_ROOT="$DIR/krew-root" "$BIN/kubectl-krew" version; }
have_all() { have_etcd && have_kube && have_krew; }

if have_all; then
  say "cached: $BIN ($("$BIN/kube-apiserver" --version), etcd ${ETCD_VERSION#v})"
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN" "$DIR/src/etcd" "$DIR/src/kube"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
# Private module and build caches (about 1 GB and 2.6 GB), removed after a successful build: the
# binaries are what is kept, and a CI disk has run out of space before.
export GOMODCACHE="$DIR/go-mod-cache" GOCACHE="$DIR/go-build-cache"
clean_go_caches() {
  if [ -z "${KPULSE_KEEP_GO_CACHE:-}" ]; then
    go clean -cache -modcache >/dev/null 2>&1 || true
    rm -rf "$GOMODCACHE" "$GOCACHE"
  fi
}
start=$(date +%s)

minor=$(echo "$K8S_VERSION" | cut -d. -f2)
staging_tag="v0.${K8S_VERSION#v1.}"

# ---- etcd: etcd's own server/main.go is exactly this.
if ! have_etcd; then
  say "building etcd $ETCD_VERSION (go.etcd.io/etcd/server/v3)…"
  cd "$DIR/src/etcd"
  cat > go.mod <<MOD
module kpulse.local/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod tidy >&2 || die "go mod tidy failed for go.etcd.io/etcd/server/v3@$ETCD_VERSION: the module proxy lacks a module named above"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" . >&2 || die "building etcd failed"
  say "etcd built in $(( $(date +%s) - start )) s"
fi

# ---- krew: no replace lines, so `go install …@version` works.
if ! have_krew; then
  say "building krew $KREW_VERSION (sigs.k8s.io/krew)…"
  GOBIN="$DIR/src" go install -ldflags "-X sigs.k8s.io/krew/internal/version.gitTag=$KREW_VERSION" \
    "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" >&2 ||
    die "building krew failed: the module proxy lacks sigs.k8s.io/krew@$KREW_VERSION or a dependency named above"
  mv "$DIR/src/krew" "$BIN/kubectl-krew"
fi

# ---- the k8s.io/kubernetes binaries, in one `go build` so they share packages.
if ! have_kube; then
  say "building $KUBE_CMDS $K8S_VERSION (k8s.io/kubernetes, staging modules at $staging_tag)…"
  cd "$DIR/src/kube"
  kmod=$(curl -fsS "$PROXY/k8s.io/kubernetes/@v/$K8S_VERSION.mod") ||
    die "the module proxy ($PROXY) does not serve k8s.io/kubernetes@$K8S_VERSION"
  staging=$(echo "$kmod" | awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}')
  [ -n "$staging" ] || die "no staging modules found in k8s.io/kubernetes@$K8S_VERSION's go.mod"
  {
    echo "module kpulse.local/kube"
    echo
    echo "go 1.26.0"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_tag"; done
    echo ")"
  } > go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in $KUBE_CMDS; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > tools.go
  if ! go mod tidy >"$DIR/tidy.log" 2>&1; then
    cat "$DIR/tidy.log" >&2
    missing=$(grep -oE '[a-z0-9.-]+\.[a-z]+/[^ :@]+@v[^ :]+' "$DIR/tidy.log" | sort -u | head -5 | tr '\n' ' ')
    die "go mod tidy failed; module(s) the proxy did not serve: ${missing:-see above}"
  fi
  say "modules resolved in $(( $(date +%s) - start )) s; compiling (the first build takes many minutes on 2 cores)…"
  ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  pkgs=""
  for c in $KUBE_CMDS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  # shellcheck disable=SC2086 # one word per package
  go build -trimpath -ldflags "$ld" -o "$BIN/" $pkgs >&2 || die "building $KUBE_CMDS failed"
  say "compiled in $(( $(date +%s) - start )) s"
fi

have_all || die "built, but the binaries do not report $K8S_VERSION / etcd $ETCD_VERSION / krew $KREW_VERSION"
clean_go_caches
say "done in $(( $(date +%s) - start )) s: $(du -sh "$BIN" | cut -f1) in $BIN"
echo "$BIN"
