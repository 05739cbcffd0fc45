#!/usr/bin/env bash
# Build helm from the pinned Go module beside this script, into a cache outside the checkout.
#
#   tools/helm/build.sh          build helm if it is missing, print the bin directory
#   MODELOPS_HELM_BIN_DIR=DIR    use DIR/helm instead (nothing is built)
#   MODELOPS_HELM_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/helm)
#
# The cache key is a hash of go.mod, go.sum, tools.go and the Go version. Only the last line of
# stdout is the bin directory; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[helm-build] %s\n' "$*" >&2; }

if [[ -n "${MODELOPS_HELM_BIN_DIR:-}" ]]; then
  [[ -x "$MODELOPS_HELM_BIN_DIR/helm" ]] || { log "missing $MODELOPS_HELM_BIN_DIR/helm"; exit 1; }
  echo "$MODELOPS_HELM_BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: it is needed to build helm"; exit 1; }

key=$( (go env GOVERSION GOOS GOARCH; cat "$here/go.mod" "$here/go.sum" "$here/tools.go" "$0") | sha256sum | cut -c1-16)
root=${MODELOPS_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/helm}
bin="$root/$key/bin"

if [[ -x "$bin/helm" ]]; then
  log "cache hit: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
tmp=$(mktemp -d "$root/$key/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false"

# Stamp the release and the default Kubernetes version (from client-go v0.N -> 1.N) as the upstream
# Makefile does: without them `helm template` assumes Kubernetes 1.20 and `helm version` says nothing.
version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$here/go.mod")
k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$here/go.mod" | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done

log "building helm $version"
start=$SECONDS
(cd "$here" && go build -ldflags="$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
mv "$tmp/helm" "$bin/helm"
log "built helm in $((SECONDS - start)) s"
echo "$bin"
