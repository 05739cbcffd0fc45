"""The rollout step of the recipe (reconciler.py): Available, naming failing pods of the current rollout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator import status as st
from modelops_operator.builders.ingress import ingress_url
from modelops_operator.builders.route import route_url
from modelops_operator.builders.service import service_url
from modelops_operator.kube import Kube
from modelops_operator.steps import Pass, Step


def explain_unavailable(kube: Kube, deployment: Mapping[str, Any], check: st.Check) -> st.Check:
    """Name the failing pods of a rollout that is not available (reads pods only then, never at rest).

    Only the current ReplicaSet's pods count: an old pod crash-looping while its replacement starts is
    not why the new rollout waits. The ReplicaSets are listed only once some pod is failing.
    """
    if check.ok or check.reason in ("DeploymentMissing", "RolloutPending"):
        return check
    namespace, selector = deployment["metadata"]["namespace"], st.rollout_of(deployment).selector
    failing = [p for p in kube.list_objects("v1", "Pod", namespace, selector) if st.is_failing(p)]
    if not failing:
        return check
    template_hash = st.current_template_hash(
        deployment, kube.list_objects("apps/v1", "ReplicaSet", namespace, selector)
    )
    current = [
        p for p in failing if p["metadata"].get("labels", {}).get(st.TEMPLATE_HASH_LABEL) == template_hash
    ]
    return st.explain_rollout(check, current)


def check_rollout(p: Pass, deployment: Mapping[str, Any]) -> Step[st.Rollout]:
    """Available, with the replica counts and the URL clients use as status fields."""
    available = explain_unavailable(p.kube, deployment, st.deployment_check(deployment))
    rollout = st.rollout_of(deployment)
    url = ingress_url(p.spec.ingress) if p.spec.ingress else service_url(p.body)
    if p.spec.route is not None:
        url = route_url(p.spec.route, url)
    fields = {
        "url": url,
        "replicas": rollout.total,
        "readyReplicas": rollout.ready,
        "selector": rollout.selector,
    }
    return Step("Available", available, rollout, fields)
