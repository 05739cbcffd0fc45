#!/usr/bin/env bash
# Build Argo CD from the pinned Go module beside this script, into a cache outside the checkout.
#
#   tools/argocd/build.sh          build argocd if it is missing, print the bin directory
#   MODELOPS_ARGOCD_BIN_DIR=DIR    use DIR/argocd instead (nothing is built)
#   MODELOPS_ARGOCD_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/argocd)
#
# Argo CD 3.6 needs Go 1.27: GOTOOLCHAIN=go1.27.3 here only (the go command fetches that toolchain from
# the module proxy the first time). One multi-call binary (about 155 MiB); the bin directory also gets the
# symlinks argocd-application-controller and argocd-repo-server, which pick the command by name.
# Cold: about 7 min and 2.3 GB of memory at the peak. Only the last line of stdout is the bin directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=go1.27.3
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

bin=$(gobuild argocd github.com/argoproj/argo-cd/v3/cmd "$here" \
  "-X github.com/argoproj/argo-cd/v3/common.version=3.6.1" "$0")
for command in argocd-application-controller argocd-repo-server; do
  ln -sfn argocd "$bin/$command"
done
echo "$bin"
