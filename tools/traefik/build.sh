#!/usr/bin/env bash
# Build Traefik (the local cluster's Ingress controller) from the pinned Go module beside this script,
# into a cache outside the checkout.
#
#   tools/traefik/build.sh          build traefik if it is missing, print the bin directory
#   MODELOPS_TRAEFIK_BIN_DIR=DIR    use DIR/traefik instead (nothing is built)
#   MODELOPS_TRAEFIK_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/traefik)
#
# The cache key is a hash of go.mod, go.sum, tools.go, this script and the Go version. Only the last
# line of stdout is the bin directory; progress goes to stderr. The web UI is not in the module zip:
# the dashboard is empty, which the project does not use.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[traefik-build] %s\n' "$*" >&2; }

if [[ -n "${MODELOPS_TRAEFIK_BIN_DIR:-}" ]]; then
  [[ -x "$MODELOPS_TRAEFIK_BIN_DIR/traefik" ]] || { log "missing $MODELOPS_TRAEFIK_BIN_DIR/traefik"; exit 1; }
  echo "$MODELOPS_TRAEFIK_BIN_DIR"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed: it is needed to build traefik"; exit 1; }

key=$( (go env GOVERSION GOOS GOARCH; cat "$here/go.mod" "$here/go.sum" "$here/tools.go" "$0") | sha256sum | cut -c1-16)
root=${MODELOPS_TRAEFIK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/traefik}
bin="$root/$key/bin"

if [[ -x "$bin/traefik" ]]; then
  log "cache hit: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
tmp=$(mktemp -d "$root/$key/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false"

version=$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3}' "$here/go.mod")
ldflags="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$version"

log "building traefik $version"
start=$SECONDS
(cd "$here" && go build -ldflags="$ldflags" -o "$tmp/traefik" github.com/traefik/traefik/v3/cmd/traefik)
mv "$tmp/traefik" "$bin/traefik"
log "built traefik in $((SECONDS - start)) s"
echo "$bin"
