#!/usr/bin/env bash
# Build modelops-bake (the build Jobs' builder, main.go beside this script) into a cache outside the
# checkout; tools/image/build.sh builder puts it in an image.
#
#   tools/bake/build.sh              build modelops-bake if it is missing, print the bin directory
#   MODELOPS_MODELOPS_BAKE_BIN_DIR   use that directory's modelops-bake instead (nothing is built)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

# gobuild keys its cache on the module files, tools.go and the script it is given: main.go is the source
# here, so the key gets this script followed by main.go.
gobuild modelops-bake . "$here" "" <(cat "$0" "$here/main.go")
