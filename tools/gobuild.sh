# Shared by tools/helm/build.sh and tools/traefik/build.sh (sourced, not run): build one command from a
# pinned Go module into a cache keyed by the module files, the calling script and the Go version.
#
#   gobuild NAME PACKAGE MODULE_DIR LDFLAGS SCRIPT [TAGS]   build NAME unless cached; print its bin directory
#
# MODELOPS_<NAME>_BIN_DIR (e.g. MODELOPS_HELM_BIN_DIR) names a directory holding a ready binary instead;
# MODELOPS_<NAME>_CACHE moves the cache root (default ${XDG_CACHE_HOME:-~/.cache}/modelops/<name>).

gobuild() {
  local name=$1 pkg=$2 dir=$3 ldflags=$4 script=$5 tags=${6:-}
  local upper
  upper=$(tr '[:lower:]-' '[:upper:]_' <<<"$name")
  local bin_override="MODELOPS_${upper}_BIN_DIR" cache_override="MODELOPS_${upper}_CACHE"
  log() { printf '[%s-build] %s\n' "$name" "$*" >&2; }

  if [[ -n "${!bin_override:-}" ]]; then
    [[ -x "${!bin_override}/$name" ]] || { log "missing ${!bin_override}/$name"; return 1; }
    echo "${!bin_override}"
    return 0
  fi
  command -v go >/dev/null || { log "go is not installed: it is needed to build $name"; return 1; }

  local key root bin tmp start
  key=$( (go env GOVERSION GOOS GOARCH; cat "$dir/go.mod" "$dir/go.sum" "$dir/tools.go" "$script" "${BASH_SOURCE[0]}") \
    | sha256sum | cut -c1-16)
  root=${!cache_override:-${XDG_CACHE_HOME:-$HOME/.cache}/modelops/$name}
  bin="$root/$key/bin"
  if [[ -x "$bin/$name" ]]; then
    log "cache hit: $bin"
    echo "$bin"
    return 0
  fi
  mkdir -p "$bin"
  tmp=$(mktemp -d "$root/$key/tmp.XXXXXX")
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
  log "building $name ($pkg)"
  start=$SECONDS
  (cd "$dir" && go build -tags="$tags" -ldflags="-s -w $ldflags" -o "$tmp/$name" "$pkg") || { rm -rf "$tmp"; return 1; }
  mv "$tmp/$name" "$bin/$name"
  rm -rf "$tmp"
  log "built $name in $((SECONDS - start)) s"
  echo "$bin"
}
