#!/usr/bin/env bash
# Build the root Dockerfile's images with buildah, without a container engine or a reachable registry.
#
#   tools/image/build.sh [operator|service|builder|base]...   default: operator service
#
# `builder` is the build Jobs' builder (tools/bake: modelops-bake, a static Go binary): the binary, the
# stand-in base's CA bundle and nothing else, run as 65532.
#   PYTHON_IMAGE=REF            base image to build on (default: the local stand-in below; set it to
#                               python:3.11-slim where a registry is reachable)
#   MODELOPS_IMAGE_TAG=TAG      tag of modelops/modelops-{operator,service} (default: pyproject's version)
#   MODELOPS_REBUILD_BASE=1     rebuild the stand-in base even if it exists
#
# The stand-in for python:3.11-slim (localhost/modelops-python:3.11-slim) is a Debian bookworm minbase
# made by mmdebstrap from this machine's apt sources: Python 3.11, pip, venv, CA certificates, passwd;
# `python` and `pip` on PATH, pip installs into /usr/local, no PEP 668 marker (the official image has
# none either). The RUN steps reach the package index through this machine's pip settings and CA bundle,
# bind-mounted for the build only: nothing of them is written into a layer. Progress goes to stderr;
# stdout gets one line per image: name, size, seconds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
base_ref=localhost/modelops-python:3.11-slim
suite=bookworm  # Debian 12: its python3 is 3.11, as in python:3.11-slim

log() { printf '[image-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v buildah >/dev/null || die "buildah is not installed (Debian: apt-get install buildah)"

tag=${MODELOPS_IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)}
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(operator service)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian apt sources of this machine for the suite (one-line or deb822 files); other repositories
# (vendor packages with their own keys) are left out.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    grep -Eq "^[^#]*(^|[[:space:]])$suite([[:space:]]|-|$)" "$f" || continue
    grep -Eq 'debian' "$f" || continue
    printf '%s\n' "$f"
  done
}

build_base() {
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
  mapfile -t sources < <(apt_sources)
  [[ ${#sources[@]} -gt 0 ]] || die "no apt source for Debian $suite in /etc/apt"
  # apt settings such as proxies or snapshot validity apply to the bootstrap; the image does not keep them.
  local aptopts=() f
  for f in /etc/apt/apt.conf.d/*; do
    [[ -f "$f" ]] && grep -q '^[^#/]*Acquire::' "$f" && aptopts+=("--aptopt=$f")
  done
  local started=$SECONDS
  log "bootstrapping Debian $suite (${sources[*]})"
  mmdebstrap --variant=minbase --mode=root --quiet \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,netbase,tzdata \
    "${aptopts[@]}" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED "$1"/etc/apt/apt.conf.d/99mmdebstrap' \
    "$suite" "$work/rootfs.tar" "${sources[@]}" >&2
  local ctr
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env LANG=C.UTF-8 --cmd python3 \
    --label org.opencontainers.image.description="Local stand-in for python:3.11-slim (Debian $suite python3)" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$base_ref" >/dev/null
  log "base $base_ref built in $((SECONDS - started)) s"
  rm -f "$work/rootfs.tar"
}

# This machine's pip settings (environment first, then files, as pip reads them) as a user pip.conf for
# the build's root: the index and its trust settings, not local paths such as find-links.
pip_conf() {
  local pip
  pip=$(command -v pip3 || command -v pip || true)
  mkdir -p "$work/root/.config/pip"
  {
    echo "[global]"
    if [[ -n "$pip" ]]; then
      "$pip" config list 2>/dev/null \
        | sed -n "s/^[^.]*\.\(index-url\|extra-index-url\|trusted-host\|timeout\|default-timeout\|retries\)='\(.*\)'$/\1 = \2/p" \
        | awk -F' = ' '!seen[$1]++'
    elif [[ -n "${PIP_INDEX_URL:-}" ]]; then
      echo "index-url = $PIP_INDEX_URL"
    fi
  } >"$work/root/.config/pip/pip.conf"
  chmod -R go-rwx "$work/root"
}

build_target() {
  local target=$1 base=$2 name="modelops/modelops-$1:$tag"
  local mounts=(
    # /root exists in every Debian-based image, so mounting over it leaves no mount point behind in a
    # layer (a mount on a missing path would); RUN steps run as root and read ~/.config/pip/pip.conf.
    -v "$work/root:/root:ro"
  )
  local ca=/etc/ssl/certs/ca-certificates.crt
  # The machine's CA bundle replaces the image's during RUN steps (an intercepting proxy's CA, if any).
  [[ -f "$ca" ]] && mounts+=(-v "$ca:$ca:ro")
  local started=$SECONDS
  log "building $name (--target $target, base $base)"
  buildah bud --isolation chroot --layers --quiet --target "$target" \
    --build-arg "PYTHON_IMAGE=$base" "${mounts[@]}" \
    -t "$name" -f "$repo/Dockerfile" "$repo" >&2
  printf '%s %s %ss\n' "localhost/$name" \
    "$(buildah images --format '{{.Size}}' "localhost/$name" | head -1 | tr -d ' ')" "$((SECONDS - started))"
}

# The builder: FROM scratch, the binary and a CA bundle (Debian's ca-certificates, from the base image).
build_builder() {
  local name="modelops/modelops-builder:$tag" started=$SECONDS bin ctr from mnt
  bin=$("$repo/tools/bake/build.sh")
  log "building $name"
  from=$(buildah from --quiet "$base")
  mnt=$(buildah mount "$from")
  ctr=$(buildah from --quiet scratch)
  buildah copy --quiet --chmod 0755 "$ctr" "$bin/modelops-bake" /modelops-bake >/dev/null
  buildah copy --quiet --chmod 0644 "$ctr" "$mnt/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah umount "$from" >/dev/null
  buildah rm "$from" >/dev/null
  buildah config --user 65532:65532 --entrypoint '["/modelops-bake"]' --cmd '' --env HOME=/tmp \
    --label org.opencontainers.image.description="modelops build Jobs: append the models as a layer, push" "$ctr"
  buildah commit --quiet --rm "$ctr" "localhost/$name" >/dev/null
  printf '%s %s %ss\n' "localhost/$name" \
    "$(buildah images --format '{{.Size}}' "localhost/$name" | head -1 | tr -d ' ')" "$((SECONDS - started))"
}

base=${PYTHON_IMAGE:-$base_ref}
for t in "${targets[@]}"; do
  case "$t" in
    base | operator | service | builder) ;;
    *) die "unknown target '$t' (operator, service, builder or base)" ;;
  esac
done
if [[ -z "${PYTHON_IMAGE:-}" ]]; then
  if [[ -n "${MODELOPS_REBUILD_BASE:-}" ]] || ! buildah inspect --type image "$base_ref" >/dev/null 2>&1; then
    build_base
  elif [[ " ${targets[*]} " == *" base "* ]]; then
    log "base $base_ref exists (MODELOPS_REBUILD_BASE=1 rebuilds it)"
  fi
fi
pip_conf
for t in "${targets[@]}"; do
  case "$t" in
    base) ;;
    builder) build_builder ;;
    *) build_target "$t" "$base" ;;
  esac
done
