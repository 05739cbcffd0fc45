"""spec.route: a Gateway API HTTPRoute instead of the Ingress, and the Services it weighs.

Without a canary the route sends everything to `<name>-stable` (the stable Deployment's pods, labelled
track=stable when a route is asked for); while a canary runs, `<name>-canary` gets exactly its weight.
The Ingress splits by pods; a route splits by request, whatever the pod counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator.builders.common import HTTP_PORT_NAME, child_metadata, selector_labels
from modelops_operator.builders.ingress import TRAEFIK_API
from modelops_operator.builders.service import PORT
from modelops_operator.canary import CANARY, TRACK_LABEL, canary_name
from modelops_operator.spec import Route

API_VERSION = "gateway.networking.k8s.io/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def stable_service_name(name: str) -> str:
    return f"{name}-stable"


def track_service_name(name: str, track: str) -> str:
    return canary_name(name) if track == CANARY else stable_service_name(name)


def build_track_service(owner: Mapping[str, Any], track: str) -> dict[str, Any]:
    """A ClusterIP Service over one track's pods (stable or canary), for the route's backendRefs."""
    name = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, track_service_name(name, track)),
        "spec": {
            "type": "ClusterIP",
            "selector": {**selector_labels(name), TRACK_LABEL: track},
            "ports": [
                {"name": HTTP_PORT_NAME, "port": PORT, "targetPort": HTTP_PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def build_http_route(
    owner: Mapping[str, Any], route: Route, canary_weight: int | None = None, retry: bool = False
) -> dict[str, Any]:
    """The HTTPRoute: path prefix on the hostnames, to the stable Service, and to the canary's with
    `canary_weight` percent of the requests; with `retry`, Traefik's retry Middleware as an ExtensionRef."""
    name = owner["metadata"]["name"]
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": route.gateway}
    if route.gateway_namespace:
        parent["namespace"] = route.gateway_namespace
    if route.section_name:
        parent["sectionName"] = route.section_name
    weight = canary_weight or 0
    backends = [{"name": stable_service_name(name), "port": PORT, "weight": 100 - weight}]
    if weight:
        backends.append({"name": canary_name(name), "port": PORT, "weight": weight})
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
        "backendRefs": backends,
    }
    if retry:
        middleware = {"group": TRAEFIK_API.split("/")[0], "kind": "Middleware", "name": name}
        rule["filters"] = [{"type": "ExtensionRef", "extensionRef": middleware}]
    spec: dict[str, Any] = {"parentRefs": [parent], "rules": [rule]}
    if route.hostnames:
        spec["hostnames"] = list(route.hostnames)
    return {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": child_metadata(owner, name),
        "spec": spec,
    }


def route_url(route: Route, fallback: str) -> str:
    """The URL clients use: the first hostname and the path (the Service's URL without hostnames)."""
    return f"http://{route.hostnames[0]}{route.path}" if route.hostnames else fallback


def route_accepted(live: Mapping[str, Any] | None) -> bool | None:
    """Whether a Gateway accepted the live HTTPRoute (None: no parent has said yet)."""
    for parent in ((live or {}).get("status") or {}).get("parents") or ():
        for condition in parent.get("conditions") or ():
            if condition.get("type") == "Accepted":
                return condition.get("status") == "True"
    return None
