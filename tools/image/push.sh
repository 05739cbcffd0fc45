#!/usr/bin/env bash
# Push the images `make image` built (localhost/modelops/modelops-{operator,service}:TAG) with buildah.
#
#   IMAGE_REPOSITORY=registry.example.com/acme/modelops tools/image/push.sh     -> docker://registry.example.com/acme/modelops/modelops-*:TAG
#   REGISTRY_USER / REGISTRY_PASSWORD     credentials for the registry (unset: buildah's auth file, if any)
#   IMAGE_TRANSPORT=oci:                  another containers-transports destination (default docker://)
#   MODELOPS_IMAGE_TAG=TAG                as for build.sh (default: pyproject's version)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${IMAGE_REPOSITORY:?set IMAGE_REPOSITORY, e.g. registry.example.com/acme/modelops}"
tag=${MODELOPS_IMAGE_TAG:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)}
transport=${IMAGE_TRANSPORT:-docker://}
creds=()
if [[ -n "${REGISTRY_USER:-}" ]]; then
  creds=(--creds "$REGISTRY_USER:${REGISTRY_PASSWORD:?REGISTRY_PASSWORD is needed with REGISTRY_USER}")
fi
for target in operator service; do
  source_ref="localhost/modelops/modelops-$target:$tag"
  destination="$transport$IMAGE_REPOSITORY/modelops-$target:$tag"
  buildah push "${creds[@]}" "$source_ref" "$destination" >&2
  echo "$destination"
done
