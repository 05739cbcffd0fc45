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
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

version=$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3}' "$here/go.mod")
gobuild traefik github.com/traefik/traefik/v3/cmd/traefik "$here" \
  "-X github.com/traefik/traefik/v3/pkg/version.Version=$version" "$0"
