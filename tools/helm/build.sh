#!/usr/bin/env bash
# Build helm from the pinned Go module beside this script, into a cache outside the checkout.
#
#   tools/helm/build.sh          build helm if it is missing, print the bin directory
#   MODELOPS_HELM_BIN_DIR=DIR    use DIR/helm instead (nothing is built)
#   MODELOPS_HELM_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/helm)
#
# The cache key is a hash of go.mod, go.sum, tools.go, this script and the Go version. Only the last
# line of stdout is the bin directory; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

# Stamp the release and the default Kubernetes version (from client-go v0.N -> 1.N) as the upstream
# Makefile does: without them `helm template` assumes Kubernetes 1.20 and `helm version` says nothing.
version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$here/go.mod")
k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$here/go.mod" | cut -d. -f2)
ldflags="-X helm.sh/helm/v3/internal/version.version=$version"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done

gobuild helm helm.sh/helm/v3/cmd/helm "$here" "$ldflags" "$0"
