#!/usr/bin/env bash
# Build kubectl from the pinned Go module beside this script (the control plane's Kubernetes release),
# into a cache outside the checkout: the harnesses, the tests and the demo run this kubectl, not one the
# machine may or may not have.
#
#   tools/kubectl/build.sh          build kubectl if it is missing, print the bin directory
#   MODELOPS_KUBECTL_BIN_DIR=DIR    use DIR/kubectl instead (nothing is built)
#   MODELOPS_KUBECTL_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/kubectl)
#
# The cache key is a hash of go.mod, go.sum, tools.go, this script and the Go version. Only the last
# line of stdout is the bin directory; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

# Stamp the release as the upstream build does (`kubectl version` reports it).
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")
minor=$(cut -d. -f2 <<<"$version")
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

gobuild kubectl k8s.io/kubernetes/cmd/kubectl "$here" "$ldflags" "$0"
