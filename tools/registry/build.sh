#!/usr/bin/env bash
# Build the CNCF distribution registry (the local cluster's OCI registry) from the pinned Go module beside
# this script, into a cache outside the checkout.
#
#   tools/registry/build.sh          build registry if it is missing, print the bin directory
#   MODELOPS_REGISTRY_BIN_DIR=DIR    use DIR/registry instead (nothing is built)
#   MODELOPS_REGISTRY_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/registry)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

version=$(awk '$1 == "require" && $2 == "github.com/distribution/distribution/v3" {print $3}' "$here/go.mod")
gobuild registry github.com/distribution/distribution/v3/cmd/registry "$here" \
  "-X github.com/distribution/distribution/v3/version.version=$version" "$0"
