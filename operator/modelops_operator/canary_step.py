"""The canary step of the recipe (reconciler.py, spec.canary): the I/O around canary.py.

Before the stable workload is applied: resolve the challenger (in the registry on a fresh pass, else as
status.canary recorded it), refuse a version the registry marks rejected here, analyse the pods when an
analysis is due and move the state, write a decision to the registry, and apply or remove the canary
Deployment (and, with spec.route, its Service). Its value, a CanaryPlan, is what the later steps do for
a running canary: the stable replica count while canary pods take a share of them, and the route's
weight. The Canary condition never holds Ready back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from modelops_operator import canary as cn
from modelops_operator import drift_probe
from modelops_operator import drift_status as ds
from modelops_operator import status as st
from modelops_operator.builders.common import HTTP_PORT_NAME, OWNER_LABEL, SERVICE_PORT
from modelops_operator.builders.deployment import build_canary_deployment
from modelops_operator.builders.route import build_track_service, track_service_name
from modelops_operator.drift_status import ready_endpoints
from modelops_operator.image import CANARY_BUILD, image_of_build
from modelops_operator.kube import KubeError
from modelops_operator.registry import RegistryError, ResolvedModel, resolve_model
from modelops_operator.spec import ROLES, Canary
from modelops_operator.steps import Event, Pass, Step
from modelops_operator.workload import HTTP_ROUTE, names_service, owned_by

DETAIL = "Canary"


@dataclass(frozen=True)
class CanaryPlan:
    """What the later steps do for a running canary: the stable Deployment's replicas (None: the spec's)
    and, with spec.route, the canary's weight in the HTTPRoute (None: all on stable)."""

    stable_replicas: int | None = None
    route_weight: int | None = None
    canary_service: bool = False  # the canary's Service is wanted (a canary runs behind spec.route)


DEPLOYMENT = ("apps/v1", "Deployment")
RETRYING = "; registry write failed, retrying: "


def models_key(models: Mapping[str, ResolvedModel]) -> str:
    return ",".join(f"{models[r].name}/{models[r].version}" for r in ROLES)


def recorded_challenger(p: Pass) -> dict[str, ResolvedModel] | None:
    """The challenger status.canary recorded (all three roles), if any."""
    raw = (p.status.get("canary") or {}).get("models") or {}
    if set(raw) != set(ROLES):
        return None
    return {role: ResolvedModel.from_status(raw[role]) for role in ROLES}


def challenger_models(
    p: Pass, canary: Canary, stable: Mapping[str, ResolvedModel]
) -> dict[str, ResolvedModel]:
    """The challenger's three models: the roles spec.canary names (resolved in the registry on a fresh
    pass), the stable ones for the others. Raises RegistryError."""
    recorded = None if p.fresh else recorded_challenger(p)
    named = dict(canary.models)
    if recorded is not None and all(
        recorded[role].name == ref.name and (ref.version is None or recorded[role].version == ref.version)
        for role, ref in named.items()
    ):
        return {role: recorded[role] if role in named else stable[role] for role in ROLES}
    client = p.registry.client()
    return {role: resolve_model(client, named[role]) if role in named else stable[role] for role in ROLES}


def changed_roles(challenger: Mapping[str, ResolvedModel], stable: Mapping[str, ResolvedModel]) -> list[str]:
    return [
        r for r in ROLES if (challenger[r].name, challenger[r].version) != (stable[r].name, stable[r].version)
    ]


def rejection(
    p: Pass, environment: str | None, models: Mapping[str, ResolvedModel], roles: list[str]
) -> str | None:
    """The registry's rejection of one of these versions here, as '<name>/<version>: <record>'."""
    if environment is None:
        return None
    client = p.registry.client()
    tag = cn.rejected_tag(environment)
    for role in roles:
        m = models[role]
        record = client.version_tags(m.name, m.version).get(tag)
        if record is not None:
            return f"{m.name}/{m.version} carries {tag}: {record[:300]}"
    return None


def measure(p: Pass) -> tuple[tuple[cn.Signals, cn.Signals] | None, str | None]:
    """The canary pods' and the stable pods' Signals from their /metrics (None: no canary pod ready), and
    the first canary pod that cannot start (crash loop, image pull) or whose models do not load, described.
    Raises KubeError when the pods cannot be listed."""
    selector = f"{OWNER_LABEL}={p.name},{cn.TRACK_LABEL}={cn.CANARY}"
    pods = p.kube.list_objects("v1", "Pod", p.namespace, selector)
    failures = sorted((f for pod in pods for f in st.container_failures(pod)[:1]), key=lambda f: f.pod)
    failing = failures[0].describe() if failures else None
    if failing is None:  # a pod that runs but is not ready may say its models do not load (it retries)
        waiting = [
            ds.Endpoint(pod["metadata"]["name"], pod["status"]["podIP"], SERVICE_PORT)
            for pod in pods
            if (pod.get("status") or {}).get("podIP") and not st.is_true(pod.get("status"), "Ready")
        ]
        errors: dict[str, str] = {}
        if waiting:
            template = p.settings.metrics_url_template
            errors = asyncio.run(drift_probe.load_errors(waiting, template, p.namespace, p.name))
        if errors:
            pod_name = min(errors)
            failing = f"pod {pod_name}: its models do not load: {errors[pod_name]}"
    canary_pods = {pod["metadata"]["name"] for pod in pods}
    slices = p.kube.list_objects(
        "discovery.k8s.io/v1", "EndpointSlice", p.namespace, f"kubernetes.io/service-name={p.name}"
    )
    endpoints = ready_endpoints(slices, HTTP_PORT_NAME, p.name)
    if not any(e.pod in canary_pods for e in endpoints):
        return None, failing
    texts, _ = asyncio.run(
        drift_probe.scrape_endpoints(endpoints, p.settings.metrics_url_template, p.namespace, p.name)
    )
    canary = cn.combine(cn.pod_signals(t) for pod, t in texts.items() if pod in canary_pods)
    stable = cn.combine(cn.pod_signals(t) for pod, t in texts.items() if pod not in canary_pods)
    return (canary, stable), failing


def decision_record(p: Pass, state: cn.State, models: Mapping[str, ResolvedModel]) -> str:
    """The JSON value of the registry tag recording a decision."""
    record: dict[str, Any] = {
        "deployment": f"{p.namespace}/{p.name}",
        "cluster": p.settings.cluster_name,
        "decision": state.phase,
        "at": state.decided_at,
        "startedAt": state.started_at,
        "versions": models_key(models),
        "analysis": dict(state.analysis),
    }
    if state.failed:
        record["failed"] = dict(state.failed)
    return json.dumps(record, sort_keys=True)


def record_decision(
    p: Pass, canary: Canary, state: cn.State, challenger: Mapping[str, ResolvedModel], roles: list[str]
) -> cn.State:
    """Write the decision to the registry: a promotion moves promoteAlias to the challenger's versions and
    records modelops.canary.<environment>; a rollback records modelops.rejected.<environment> on the
    versions that differ from stable. A registry error leaves `recorded` False (the next pass retries)."""
    environment = canary.environment
    note = ""
    try:
        writer = p.registry.writer()
        if state.phase == cn.PROMOTED:
            for m in challenger.values():
                writer.set_alias(m.name, canary.promote_alias, m.version)
        if environment is None:
            note = "; no environment: the decision is kept in the status only"
        elif not p.settings.may_record(environment, p.namespace):
            note = f"; not recorded: this namespace may not record environment {environment}"
        else:
            tag = cn.promoted_tag(environment) if state.phase == cn.PROMOTED else cn.rejected_tag(environment)
            value = decision_record(p, state, challenger)
            for role in roles if state.phase == cn.ROLLED_BACK else list(ROLES):
                m = challenger[role]
                writer.set_version_tag(m.name, m.version, tag, value)
            note = f"; recorded as {tag}"
    except RegistryError as e:
        return replace(state, message=f"{state.message.split(RETRYING, 1)[0]}{RETRYING}{str(e)[:300]}")
    return replace(state, recorded=True, message=state.message.split(RETRYING, 1)[0] + note)


def remove_canary_pods(p: Pass) -> bool:
    """Remove the canary's Deployment when this ModelDeployment owns it; True while it is kept draining.

    Behind the Ingress the pods leave the Service's endpoints as they terminate (serving through their
    preStop). With spec.route, the route drops the canary's weight first (this pass's route step) and the
    pods go on a later pass, once the live route no longer names their Service (a weight on a Service
    without ready endpoints answers 503); their Service goes then too (workload.ensure_route).
    """
    if p.spec.route is not None:
        route = p.kube.get(*HTTP_ROUTE, p.namespace, p.name)
        if names_service(route, track_service_name(p.name, cn.CANARY)):
            return True
    live = p.kube.get(*DEPLOYMENT, p.namespace, cn.canary_name(p.name))
    if owned_by(live, p):
        p.kube.delete(*DEPLOYMENT, p.namespace, cn.canary_name(p.name))
    return False


DRAINING = {"draining": True, "message": "the route has dropped the canary; its pods go on the next pass"}


def base_replicas(p: Pass) -> int:
    return p.spec.autoscaling.min_replicas if p.spec.autoscaling else p.spec.replicas


def check_of(state: cn.State) -> st.Check:
    if state.phase == cn.PROMOTED:
        return st.Check.passed("Promoted", state.message)
    if state.phase == cn.ROLLED_BACK:
        return st.Check.waiting("RolledBack", state.message)
    return st.Check.waiting("Progressing", state.message)


def run_canary(p: Pass, stable: Mapping[str, ResolvedModel], image: str) -> Step[CanaryPlan]:
    """Canary (only with spec.canary): its value is what the workload and route steps do for it."""
    canary = p.spec.canary
    previous_raw = p.status.get("canary")
    if canary is None:
        draining = bool(previous_raw or p.look_for_leftovers) and remove_canary_pods(p)
        fields = {"canary": DRAINING if draining else None}
        return Step(None, st.Check.passed("NotRequested", "no canary"), fields=fields)
    try:
        challenger = challenger_models(p, canary, stable)
    except RegistryError as e:
        return Step(DETAIL, st.Check.waiting(e.reason, f"challenger not resolved: {e}"))
    key = models_key(challenger)
    previous = cn.State.from_status(previous_raw)
    roles = changed_roles(challenger, stable)
    now = st.utcnow()
    if not roles:  # the challenger is what the stable pods serve (e.g. after its promotion)
        draining = remove_canary_pods(p)
        if previous is not None and previous.key == key:
            fields = {"canary": status_of(previous, challenger) | {"draining": draining or None}}
            return Step(DETAIL, check_of(previous), fields=fields)
        message = f"the challenger's versions are the stable ones ({key})"
        fields = {"canary": DRAINING if draining else None}
        return Step(DETAIL, st.Check.passed("NoChallenger", message), fields=fields)
    state = previous if previous is not None and previous.key == key else None
    if state is None:
        try:
            rejected = rejection(p, canary.environment, challenger, roles)
        except RegistryError as e:
            return Step(DETAIL, st.Check.waiting(e.reason, f"rejection records not read: {e}"))
        if rejected:
            state = cn.State(
                key, cn.ROLLED_BACK, started_at=now, recorded=True, message=f"rejected: {rejected}"
            )
        else:
            state = cn.State.start(key, now)
    image_fields: dict[str, Any] = {}
    build = p.spec.image.build
    if build is not None and state.phase == cn.PROGRESSING:  # the challenger's own image, like the stable's
        building = image_of_build(p, challenger, build, CANARY_BUILD)
        image_fields = dict(building.fields)
        if building.value is None:  # the canary (and its clock) starts once its image exists
            draining = remove_canary_pods(p)
            check = replace(building.check, message=f"the challenger's image: {building.check.message}")
            return Step(DETAIL, check, fields=image_fields | {"canary": DRAINING if draining else None})
        image = building.value
    if cn.due(state, canary, now):
        try:
            measured, failing = measure(p)
            deadline = p.spec.progress_deadline_seconds  # the stable rollout's, for the canary's pods
            state = cn.advance(state, canary, measured, now, failing, deadline)
        except KubeError as e:  # the pods could not be listed: this analysis waits for the next pass
            state = replace(state, message=f"pods not listed for the analysis: {e.reason}")
    if state.phase in cn.ENDED and not state.recorded:
        state = record_decision(p, canary, state, challenger, roles)
    predictor = challenger["predictor"]
    label = f"{predictor.name} v{predictor.version}"
    events = tuple(Event(*e) for e in cn.transitions(previous, state, canary, label))
    if state.phase != cn.PROGRESSING:
        draining = remove_canary_pods(p)
        fields = {"canary": status_of(state, challenger) | {"draining": draining or None}}
        return Step(DETAIL, check_of(state), fields=fields, events=events)
    weight = cn.schedule(canary)[state.step]
    stable_pods, canary_pods = cn.split(base_replicas(p), weight)
    name = cn.canary_name(p.name)
    live = p.kube.get(*DEPLOYMENT, p.namespace, name)
    if live is not None and not owned_by(live, p):
        message = f"Deployment {name} exists and is not this ModelDeployment's: the canary cannot start"
        return Step(DETAIL, st.Check.stuck("CanaryNameTaken", message), fields={"canary": None})
    wanted = build_canary_deployment(p.body, p.spec, challenger, image, canary_pods, build is not None)
    p.kube.apply(wanted, live)
    routed = p.spec.route is not None
    route_weight = None
    if routed:  # the route weighs the canary's own Service: an exact share, whatever the pod counts
        service = p.kube.apply(build_track_service(p.body, cn.CANARY))
        # ... once it has a ready endpoint: a weight on a Service without one fails its share
        slices = p.kube.list_objects(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            p.namespace,
            f"kubernetes.io/service-name={service['metadata']['name']}",
        )
        if ready_endpoints(slices, HTTP_PORT_NAME, service["metadata"]["name"]):
            route_weight = weight
    share = (route_weight or 0) if routed else cn.share(stable_pods, canary_pods)
    fields = image_fields | {"canary": status_of(state, challenger, (stable_pods, canary_pods, share))}
    plan = CanaryPlan(None if p.spec.autoscaling else stable_pods, route_weight, routed)
    return Step(DETAIL, check_of(state), plan, fields, events)


def status_of(
    state: cn.State, challenger: Mapping[str, ResolvedModel], pods: tuple[int, int, int] | None = None
) -> dict[str, Any]:
    """status.canary: the state, the challenger's models, the pods (stable, canary, the canary's share of
    the traffic) while it runs, and the printer column."""
    predictor = challenger["predictor"]
    label = f"{predictor.name} v{predictor.version}"
    fields: dict[str, Any] = {
        **state.to_status(),
        "models": {r: m.to_status() for r, m in challenger.items()},
    }
    stable_pods, canary_pods, share = pods or (None, None, None)
    fields |= {"stablePods": stable_pods, "canaryPods": canary_pods, "share": share}
    fields["summary"] = cn.column(state, label, share)
    return fields
