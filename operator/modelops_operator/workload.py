"""The workload, ingress and monitor steps of the recipe (reconciler.py): the children that serve.

Each child is built by a pure builder (builders/) and applied through the one idempotent apply; a child
the spec no longer wants is deleted, looked for only after a spec change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator import status as st
from modelops_operator.builders.deployment import build_deployment
from modelops_operator.builders.hpa import build_hpa
from modelops_operator.builders.ingress import (
    TRAEFIK_API,
    build_ingress,
    build_retry_middleware,
    permitted_annotations,
)
from modelops_operator.builders.podmonitor import API_VERSION as POD_MONITOR_API
from modelops_operator.builders.podmonitor import build_pod_monitor
from modelops_operator.builders.route import API_VERSION as ROUTE_API
from modelops_operator.builders.route import (
    build_http_route,
    build_track_service,
    route_accepted,
    track_service_name,
)
from modelops_operator.builders.service import build_service
from modelops_operator.canary import CANARY, STABLE
from modelops_operator.kube import KubeError
from modelops_operator.registry import ResolvedModel
from modelops_operator.steps import Pass, Step

INGRESS = ("networking.k8s.io/v1", "Ingress")
HTTP_ROUTE = (ROUTE_API, "HTTPRoute")
SERVICE = ("v1", "Service")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
MIDDLEWARE = (TRAEFIK_API, "Middleware")


def apply_child(
    p: Pass, kind: tuple[str, str], desired: dict[str, Any] | None, look_for_leftover: bool
) -> dict[str, Any] | None:
    """Apply `desired` (the live object the caller observed saves a GET); when None, delete a left-over."""
    if desired is not None:
        return p.kube.apply(desired, p.observed.get(kind[1]), p.new)
    if look_for_leftover and p.kube.get(*kind, p.namespace, p.name) is not None:
        p.kube.delete(*kind, p.namespace, p.name)
    return None


def apply_workload(
    p: Pass, models: Mapping[str, ResolvedModel], image: str, replicas: int | None = None
) -> dict[str, Any]:
    """The Deployment (returned live), its Service and its HorizontalPodAutoscaler (when autoscaling);
    `replicas` overrides spec.replicas while a canary runs beside it."""
    baked = p.spec.image.build is not None
    wanted = build_deployment(p.body, p.spec, models, image, baked, replicas)
    deployment = p.kube.apply(wanted, p.observed.get("Deployment"), p.new)
    p.kube.apply(build_service(p.body), p.observed.get("Service"), p.new)
    hpa = build_hpa(p.body, p.spec.autoscaling) if p.spec.autoscaling else None
    apply_child(p, HPA, hpa, p.look_for_leftovers)
    return deployment


def owned_by(live: Mapping[str, Any] | None, p: Pass) -> bool:
    """Whether this ModelDeployment is the live object's controller (another one may own that name)."""
    uid = p.body["metadata"].get("uid")
    refs = (live or {}).get("metadata", {}).get("ownerReferences") or ()
    return live is not None and any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def delete_named(p: Pass, kind: tuple[str, str], name: str) -> None:
    """Delete a child that has its own name (not the owner's) when it exists and is this one's."""
    if owned_by(p.kube.get(*kind, p.namespace, name), p):
        p.kube.delete(*kind, p.namespace, name)


def ensure_route(p: Pass, canary_weight: int | None, canary_service: bool = False) -> Step[dict[str, Any]]:
    """IngressReady for spec.route: the stable Service and the HTTPRoute (with the canary's weight while
    one runs), accepted by its Gateway or not yet. The canary's Service goes only once the live route no
    longer names it: a route naming a missing Service answers 500 for its share."""
    assert p.spec.route is not None
    apply_child(p, INGRESS, None, p.look_for_leftovers)
    p.kube.apply(build_track_service(p.body, STABLE))
    before = p.kube.get(*HTTP_ROUTE, p.namespace, p.name)
    retry = p.settings.ingress_controller == "traefik"
    live = p.kube.apply(build_http_route(p.body, p.spec.route, canary_weight, retry), before)
    if not canary_service and not names_service(before, track_service_name(p.name, CANARY)):
        delete_named(p, SERVICE, track_service_name(p.name, CANARY))
    accepted = route_accepted(live)
    gateway = p.spec.route.gateway
    if accepted is False:
        check = st.Check.waiting("RouteNotAccepted", f"Gateway {gateway} has not accepted HTTPRoute {p.name}")
    elif accepted:
        check = st.Check.passed("RouteAccepted", f"HTTPRoute {p.name} accepted by Gateway {gateway}")
    else:
        check = st.Check.passed("RouteApplied", f"HTTPRoute {p.name} applied; no Gateway has said yet")
    return Step("IngressReady", check, live)


def names_service(route: Mapping[str, Any] | None, service: str) -> bool:
    """Whether a live HTTPRoute sends requests to the Service `service`."""
    rules = ((route or {}).get("spec") or {}).get("rules") or ()
    return any(ref.get("name") == service for rule in rules for ref in rule.get("backendRefs") or ())


def ensure_ingress(
    p: Pass, canary_weight: int | None = None, canary_service: bool = False
) -> Step[dict[str, Any]]:
    """IngressReady: not requested, applied, or with the controller's address (with spec.route: the
    HTTPRoute instead, ensure_route). With Traefik as the controller (the operator's setting), its retry
    Middleware first: the Ingress (or the route) names it."""
    prefixes = p.settings.ingress_annotation_prefixes
    retry = p.settings.ingress_controller == "traefik"
    if retry:
        middleware = build_retry_middleware(p.body) if p.spec.ingress or p.spec.route else None
        apply_child(p, MIDDLEWARE, middleware, p.look_for_leftovers)
    if p.spec.route is not None:
        return ensure_route(p, canary_weight, canary_service)
    if p.look_for_leftovers:  # a route the spec dropped, and its Services
        apply_child(p, HTTP_ROUTE, None, True)
        for track in (STABLE, CANARY):
            delete_named(p, SERVICE, track_service_name(p.name, track))
    wanted = build_ingress(p.body, p.spec.ingress, prefixes, retry) if p.spec.ingress else None
    live = apply_child(p, INGRESS, wanted, p.look_for_leftovers)
    check = st.ingress_check(wanted is not None, live)
    _, left_out = permitted_annotations(p.spec.ingress.annotations if p.spec.ingress else (), prefixes)
    if left_out:  # served all the same; the status says which annotations the operator did not copy
        listed = ", ".join(k[:80] for k in left_out[:5]) + (
            f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
        )
        check = st.Check(check.ok, check.reason, f"{check.message}; annotations not allowed here: {listed}")
    return Step("IngressReady", check, live)


def ensure_pod_monitor(p: Pass) -> Step[None]:
    """PodMonitorReady when spec.podMonitor asks for one (no detail otherwise); a left-over is removed.

    A cluster without the monitoring.coreos.com CRDs answers 404, and an operator without RBAC for them
    403: either is reported in PodMonitorReady (which does not hold Ready back; a timer tries again
    while it is False); temporary failures raise KubeError like any child's.
    """
    kind = (POD_MONITOR_API, "PodMonitor")
    wanted = build_pod_monitor(p.body, p.spec.pod_monitor) if p.spec.pod_monitor else None
    no_detail: Step[None] = Step(None, st.Check.passed("NotRequested", "no PodMonitor requested"))
    try:
        apply_child(p, kind, wanted, p.look_for_leftovers and wanted is None)
    except KubeError as e:
        if wanted is None:  # removing a left-over: a missing CRD means there is nothing to remove
            if e.status == 404 or e.permanent:
                return no_detail
            raise
        if e.status == 404:
            message = (
                f"{POD_MONITOR_API} PodMonitor is not served by this cluster (the Prometheus Operator's "
                "CRDs are missing); the pods keep their prometheus.io/* annotations"
            )
            return Step("PodMonitorReady", st.Check.waiting("PodMonitorCRDMissing", message))
        if e.permanent:
            return Step("PodMonitorReady", st.Check.waiting(e.reason, str(e)))
        raise
    if p.spec.pod_monitor is None:
        return no_detail
    message = f"PodMonitor {p.name} scrapes the pods every {p.spec.pod_monitor.interval}"
    return Step("PodMonitorReady", st.Check.passed("Applied", message))
