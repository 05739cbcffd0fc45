#!/usr/bin/env bash
# Build actionlint from the pinned Go module beside this script, into a cache outside the checkout.
#
#   tools/actionlint/build.sh          build actionlint if it is missing, print the bin directory
#   MODELOPS_ACTIONLINT_BIN_DIR=DIR    use DIR/actionlint instead (nothing is built)
#   MODELOPS_ACTIONLINT_CACHE=DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/modelops/actionlint)
#
# The cache key is a hash of go.mod, go.sum, tools.go, this script and the Go version. Only the last
# line of stdout is the bin directory; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

gobuild actionlint github.com/rhysd/actionlint/cmd/actionlint "$here" "" "$0"
