#!/usr/bin/env bash
# Build promtool from the pinned Prometheus Go module beside this script, into a cache outside the checkout.
#
#   tools/prometheus/build.sh          build promtool if it is missing, print the bin directory
#   MODELOPS_PROMTOOL_BIN_DIR=DIR      use DIR/promtool instead (nothing is built)
#   MODELOPS_PROMTOOL_CACHE=DIR        cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/promtool)
#
# The cache key is a hash of go.mod, go.sum, tools.go, this script and the Go version. Only the last
# line of stdout is the bin directory; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

# remove_all_sd: without the cloud service-discovery plugins (AWS, Azure, GCE, ...), which rule tests never
# use; the build then compiles about a third of the packages.
gobuild promtool github.com/prometheus/prometheus/cmd/promtool "$here" "" "$0" remove_all_sd
