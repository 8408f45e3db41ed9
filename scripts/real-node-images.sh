#!/usr/bin/env bash
# Container images for the real node, without a registry or Docker: OCI image tarballs assembled
# from files on this machine, for `ctr -n k8s.io images import`.
#
#   kpulse.local/workload:1   demo/workload (a static Go binary): the shop's services and its load
#   kpulse.local/pause:1      the same binary as `workload pause`: containerd's sandbox_image
#   kpulse.local/nginx:1      Debian's nginx and the shared libraries it links: the gateway pod
#
# Cached under $KPULSE_K8S_CACHE/real-node-images/<hash of the inputs>; prints that directory on its
# last line of stdout. An image is one uncompressed layer, its config and manifest, and an
# index.json whose `io.containerd.image.name` annotation names it for ctr.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { echo "real-node-images: $*" >&2; }
die() { say "error: $*"; exit 1; }

command -v go >/dev/null || die "the Go toolchain is missing (the machine's Go ≥ 1.26)"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || die "nginx is missing: apt-get install -y nginx-light"

inputs=$( (cat demo/workload/go.mod demo/workload/*.go "$0"; "$nginx_bin" -v 2>&1; go version) | sha256sum | cut -c1-16)
CACHE_ROOT=${KPULSE_K8S_CACHE:-$HOME/.cache/kpulse}
OUT="$CACHE_ROOT/real-node-images/$inputs"
if [ -f "$OUT/done" ]; then
  say "cached: $OUT"
  echo "$OUT"
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "building demo/workload (static)…"
(cd demo/workload && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$work/workload" .) ||
  die "building demo/workload failed"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# image NAME ROOTFS-DIR CONFIG-JSON: writes $OUT/NAME.tar (an OCI layout in a tar).
image() {
  local name=$1 rootfs=$2 config=$3 dir="$work/oci-$1"
  mkdir -p "$dir/blobs/sha256"
  # Reproducible layer: sorted names, fixed owner and time.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$dir/layer.tar" .
  local layer_sha layer_size
  layer_sha=$(sha "$dir/layer.tar")
  layer_size=$(size "$dir/layer.tar")
  mv "$dir/layer.tar" "$dir/blobs/sha256/$layer_sha"
  printf '%s' "$config" | sed "s/@DIFF_ID@/sha256:$layer_sha/" >"$dir/config.json"
  local config_sha config_size
  config_sha=$(sha "$dir/config.json")
  config_size=$(size "$dir/config.json")
  mv "$dir/config.json" "$dir/blobs/sha256/$config_sha"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_sha" "$config_size" "$layer_sha" "$layer_size" >"$dir/manifest.json"
  local manifest_sha manifest_size
  manifest_sha=$(sha "$dir/manifest.json")
  manifest_size=$(size "$dir/manifest.json")
  mv "$dir/manifest.json" "$dir/blobs/sha256/$manifest_sha"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"kpulse.local/%s:1","org.opencontainers.image.ref.name":"1"}}]}' \
    "$manifest_sha" "$manifest_size" "$name" >"$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$dir" -cf "$OUT/$name.tar" oci-layout index.json blobs
}

config() { # ENTRYPOINT-JSON CMD-JSON
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Cmd":%s,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["@DIFF_ID@"]}}' "$1" "$2"
}

# The workload and pause images: one static binary, /tmp and a passwd for user lookups.
mkdir -p "$work/rootfs-workload/etc" "$work/rootfs-workload/tmp"
chmod 1777 "$work/rootfs-workload/tmp"
cp "$work/workload" "$work/rootfs-workload/workload"
printf 'root:x:0:0:root:/:/workload\nnobody:x:65534:65534:nobody:/:/workload\n' >"$work/rootfs-workload/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs-workload/etc/group"
image workload "$work/rootfs-workload" "$(config '["/workload"]' 'null')"
image pause "$work/rootfs-workload" "$(config '["/workload","pause"]' 'null')"

# The gateway: nginx and every shared library ldd names, at the same paths.
say "assembling the nginx image from $nginx_bin…"
r="$work/rootfs-nginx"
mkdir -p "$r/usr/sbin" "$r/etc/nginx" "$r/tmp" "$r/var/log/nginx" "$r/var/lib/nginx" "$r/run"
chmod 1777 "$r/tmp"
cp "$nginx_bin" "$r/usr/sbin/nginx"
for lib in $(ldd "$nginx_bin" | grep -oE '/[^ ]+'); do
  mkdir -p "$r$(dirname "$lib")"
  cp -L "$lib" "$r$lib"
done
cp /etc/nginx/mime.types "$r/etc/nginx/" 2>/dev/null || : >"$r/etc/nginx/mime.types"
printf 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
image nginx "$r" "$(config '["/usr/sbin/nginx"]' '["-g","daemon off;"]')"

touch "$OUT/done"
say "images in $OUT: $(cd "$OUT" && ls -- *.tar | tr '\n' ' ')($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
