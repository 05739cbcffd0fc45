#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)
# from the pinned Go modules beside this script, into a cache outside the checkout.
#
#   tools/cluster/build.sh          build what is missing, print the bin directory
#   tools/cluster/build.sh --node   also the real node's kubelet and kube-proxy (same pinned module set)
#                                   and its pause binary (tools/pause)
#   MODELOPS_CLUSTER_BIN_DIR=DIR    use binaries from DIR instead (nothing is built)
#   MODELOPS_CLUSTER_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/cluster)
#
# The cache key is a hash of the go.mod/go.sum files and the Go version, so a new pin builds anew and
# an unchanged pin reuses what is there. Only the last line of stdout is the bin directory; progress
# goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
node_binaries=(kubelet kube-proxy modelops-pause)
with_node=0
if [[ "${1:-}" == "--node" ]]; then with_node=1; binaries+=("${node_binaries[@]}"); fi

log() { printf '[cluster-build] %s\n' "$*" >&2; }

if [[ -n "${MODELOPS_CLUSTER_BIN_DIR:-}" ]]; then
  for b in "${binaries[@]}"; do
    [[ -x "$MODELOPS_CLUSTER_BIN_DIR/$b" ]] || { log "missing $MODELOPS_CLUSTER_BIN_DIR/$b"; exit 1; }
  done
  echo "$MODELOPS_CLUSTER_BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: it is needed to build the control plane"; exit 1; }

key=$( (go env GOVERSION GOOS GOARCH; cat "$here"/*/go.mod "$here"/*/go.sum "$here"/*/tools.go) | sha256sum | cut -c1-16)
root=${MODELOPS_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/cluster}
bin="$root/$key/bin"

missing=()
for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || missing+=("$b"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "cache hit: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
tmp="$root/$key/tmp"
mkdir -p "$tmp"
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
start=$SECONDS

# Stamp the Kubernetes binaries with their release, as the upstream build does (kubectl version, /version).
k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kubernetes/go.mod")
k8s_minor=$(cut -d. -f2 <<<"$k8s_version")
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"

build() {  # build MODULE_DIR NAME PACKAGE [LDFLAGS]
  local dir=$1 name=$2 pkg=$3 extra=${4:-}
  [[ -x "$bin/$name" ]] && return 0
  log "building $name ($pkg)"
  local t0=$SECONDS
  (cd "$here/$dir" && go build -ldflags="-s -w $extra" -o "$tmp/$name" "$pkg")
  mv "$tmp/$name" "$bin/$name"
  log "built $name in $((SECONDS - t0)) s"
}

build etcd etcd go.etcd.io/etcd/server/v3
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  build kubernetes "$c" "k8s.io/kubernetes/cmd/$c" "$k8s_ldflags"
done
if [[ $with_node == 1 ]]; then
  for c in kubelet kube-proxy; do build kubernetes "$c" "k8s.io/kubernetes/cmd/$c" "$k8s_ldflags"; done
  build ../pause modelops-pause .  # tools/pause: outside this folder, so it is not part of the cache key
fi
rmdir "$tmp" 2>/dev/null || true

log "all built in $((SECONDS - start)) s; cache size $(du -sh "$root/$key" | cut -f1)"
echo "$bin"
