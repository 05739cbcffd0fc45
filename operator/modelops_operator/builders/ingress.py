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
# Traefik's retry (MODELOPS_INGRESS_CONTROLLER=traefik): a Middleware per ModelDeployment, named like it.
TRAEFIK_API = "traefik.io/v1alpha1"
TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
# Until the Ingress controller learns that a dead pod's endpoint is gone (1 to 2 s measured on the real
# node: the kubelet's next relist, the endpoint controller, Traefik's watch), each attempt may be balanced to
# it again, half of them with two pods. 40 attempts spaced from 50 ms to 100 ms (Traefik's backoff, +-50 %)
# span about 2.8 s, and a refused connection costs about a millisecond. 8 attempts (about 0.5 s) lost 9 to
# 24 requests of 6,000 to 8,000 when the endpoint lingered; three immediate ones lost 774 of 9,821.
RETRY_ATTEMPTS = 40
RETRY_INTERVAL = "50ms"


def build_retry_middleware(owner: Mapping[str, Any]) -> dict[str, Any]:
    """Traefik's retry middleware: a request Traefik could not deliver (the connection refused, or reset
    before Traefik wrote the request's headers) goes to another pod; one that reached a pod is never sent
    twice (Traefik stops retrying once the headers are written)."""
    return {
        "apiVersion": TRAEFIK_API,
        "kind": "Middleware",
        "metadata": child_metadata(owner, owner["metadata"]["name"]),
        "spec": {"retry": {"attempts": RETRY_ATTEMPTS, "initialInterval": RETRY_INTERVAL}},
    }


def permitted_annotations(
    annotations: Sequence[tuple[str, str]], prefixes: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """(the annotations whose key starts with an allowed prefix, the keys left out); "*" allows all."""
    allowed = "*" in prefixes
    kept = {k: v for k, v in annotations if allowed or k.startswith(tuple(prefixes))}
    return kept, sorted(k for k, _ in annotations if k not in kept)


def build_ingress(
    owner: Mapping[str, Any],
    ingress: Ingress,
    prefixes: Sequence[str] = DEFAULT_ANNOTATION_PREFIXES,
    retry: bool = False,
) -> dict[str, Any]:
    """A networking.k8s.io/v1 Ingress routing host+path to the Service (annotations of `prefixes` only);
    with `retry`, Traefik's retry middleware (build_retry_middleware) first in its router's chain."""
    name = owner["metadata"]["name"]
    metadata = child_metadata(owner, name)
    kept, _ = permitted_annotations(ingress.annotations, prefixes)
    if retry:
        ours = f"{owner['metadata']['namespace']}-{name}@kubernetescrd"
        kept[TRAEFIK_MIDDLEWARES] = ",".join(filter(None, (ours, kept.get(TRAEFIK_MIDDLEWARES))))
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
