"""The optional Ingress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator.builders.common import child_metadata
from modelops_operator.builders.service import PORT
from modelops_operator.spec import Ingress


def build_ingress(owner: Mapping[str, Any], ingress: Ingress) -> dict[str, Any]:
    """A networking.k8s.io/v1 Ingress routing host+path to the Service."""
    name = owner["metadata"]["name"]
    metadata = child_metadata(owner, name)
    if ingress.annotations:
        metadata["annotations"] = dict(ingress.annotations)
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
