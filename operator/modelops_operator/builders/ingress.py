"""The optional Ingress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelops_operator.builders.common import child_metadata
from modelops_operator.builders.service import PORT
from modelops_operator.spec import Ingress

# Annotation key prefixes copied onto the Ingress unless the operator's settings say otherwise: what
# certificates, DNS and Traefik's routers need. Controller snippets (nginx's *-snippet) are not among them:
# they run a tenant's configuration inside the shared controller.
DEFAULT_ANNOTATION_PREFIXES = (
    "cert-manager.io/",
    "external-dns.alpha.kubernetes.io/",
    "traefik.ingress.kubernetes.io/router.",
)


def permitted_annotations(
    annotations: Sequence[tuple[str, str]], prefixes: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """(the annotations whose key starts with an allowed prefix, the keys left out); "*" allows all."""
    allowed = "*" in prefixes
    kept = {k: v for k, v in annotations if allowed or k.startswith(tuple(prefixes))}
    return kept, sorted(k for k, _ in annotations if k not in kept)


def build_ingress(
    owner: Mapping[str, Any], ingress: Ingress, prefixes: Sequence[str] = DEFAULT_ANNOTATION_PREFIXES
) -> dict[str, Any]:
    """A networking.k8s.io/v1 Ingress routing host+path to the Service (annotations of `prefixes` only)."""
    name = owner["metadata"]["name"]
    metadata = child_metadata(owner, name)
    kept, _ = permitted_annotations(ingress.annotations, prefixes)
    if kept:
        metadata["annotations"] = kept
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": ingress.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": name, "port": {"number": PORT}}},
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def ingress_url(ingress: Ingress) -> str:
    """The external URL the Ingress serves."""
    scheme = "https" if ingress.tls_secret else "http"
    return f"{scheme}://{ingress.host}{ingress.path}"
