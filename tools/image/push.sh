#!/usr/bin/env bash
# Push the images `make image` built (localhost/modelops/modelops-<target>:TAG) with buildah; prints each
# pushed reference by digest (repository@sha256:...), one per line.
#
#   IMAGE_REPOSITORY=registry.example.com/acme/modelops tools/image/push.sh [operator|service|builder]...
#                                         -> registry.example.com/acme/modelops/modelops-*:TAG (default:
#                                            operator service)
#   REGISTRY_USER / REGISTRY_PASSWORD     credentials for the registry (unset: buildah's auth file, if any);
#                                         the password goes to buildah on stdin, never on a command line
#   IMAGE_TLS_VERIFY=false                a registry that speaks plain HTTP (the local cluster's)
#   IMAGE_TRANSPORT=oci:                  another containers-transports destination (default docker://)
#   MODELOPS_IMAGE_TAG=TAG                as for build.sh (default: pyproject's version)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${IMAGE_REPOSITORY:?set IMAGE_REPOSITORY, e.g. registry.example.com/acme/modelops}"
tag=${MODELOPS_IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)}
transport=${IMAGE_TRANSPORT:-docker://}
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(operator service)
options=(--tls-verify="${IMAGE_TLS_VERIFY:-true}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n "${REGISTRY_USER:-}" ]]; then
  : "${REGISTRY_PASSWORD:?REGISTRY_PASSWORD is needed with REGISTRY_USER}"
  # A private auth file for this run only: buildah login reads the password from stdin.
  export REGISTRY_AUTH_FILE="$work/auth.json"
  printf '%s' "$REGISTRY_PASSWORD" | buildah login --tls-verify="${IMAGE_TLS_VERIFY:-true}" \
    --username "$REGISTRY_USER" --password-stdin "${IMAGE_REPOSITORY%%/*}" >&2
fi
for target in "${targets[@]}"; do
  source_ref="localhost/modelops/modelops-$target:$tag"
  repository="$IMAGE_REPOSITORY/modelops-$target"
  buildah push --quiet "${options[@]}" --digestfile "$work/digest" "$source_ref" "$transport$repository:$tag" >&2
  echo "$repository@$(cat "$work/digest")"
done
