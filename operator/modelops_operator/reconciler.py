"""The reconcile recipe, one pass over a ModelDeployment, in the order converge() runs it:

1. resolve    the three versions: in the registry on a fresh pass, else as the status recorded them
              (resolution.py; ModelsResolved)
2. gate       with spec.gate, only versions verified in the named environments go on (gate.py;
              PromotionAllowed); a shut gate leaves the pods and status.models as they are
3. record     what will be served, in status.models for this generation
4. image      the given reference, or the built image by digest: found in the registry, or built by a
              Job (image.py; ImageReady)
5. canary     with spec.canary, the challenger resolved, analysed when due, promoted or rolled back, its
              Deployment applied or removed (canary_step.py; Canary, non-gating); it sets the stable
              replica count while canary pods take a share
6. workload   Deployment, Service and HPA applied (workload.py)
7. ingress    the Ingress, or spec.route's HTTPRoute, applied or removed (workload.py; IngressReady)
8. monitor    the PodMonitor applied or removed (workload.py; PodMonitorReady, non-gating)
9. rollout    how the Deployment is doing, failing pods named (rollout.py; Available); a named image's
              digest read from the pods once available (image.py; status.imageDigest)
10. sync       stage, alias and deployment tags written to the registry once available (promotion.py;
              RegistrySynced, non-gating)
11. soak      spec.verification's soak advanced, the record written when it is over (soak.py; Verified,
              non-gating)

Every step takes the Pass and returns a Step (steps.py); Outcome.of turns the deciding checks into what
the handler does next. reconcile() writes the status once, whatever happened: a KubeError or an invalid
spec is classified into it, so no API or registry error escapes a pass without a status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from modelops_operator import status as st
from modelops_operator.canary_step import CanaryPlan, run_canary
from modelops_operator.gate import check_gate
from modelops_operator.image import ensure_image, named_image_digest
from modelops_operator.kube import Kube, KubeError
from modelops_operator.promotion import sync_registry
from modelops_operator.resolution import resolution_fields, resolve
from modelops_operator.rollout import check_rollout
from modelops_operator.settings import OperatorSettings
from modelops_operator.soak import verify
from modelops_operator.spec import SpecError
from modelops_operator.steps import Outcome, Pass, Report
from modelops_operator.workload import apply_workload, ensure_ingress, ensure_pod_monitor

logger = logging.getLogger(__name__)

# Which status detail a failed call on a child kind belongs to (anything else: Available).
DETAIL_OF_KIND = {
    "Secret": "ModelsResolved",
    "Job": "ImageReady",
    "Ingress": "IngressReady",
    "Middleware": "IngressReady",
    "HTTPRoute": "IngressReady",
}


def converge(p: Pass, report: Report) -> Outcome:
    """The recipe (the module docstring says what each step does); raises KubeError from the API edge."""
    resolved = report.add(resolve(p))
    if resolved.value is None:
        return Outcome.of(resolved.check)
    models = resolved.value.models
    if p.spec.gate is not None:
        gate = report.add(check_gate(p, models))
        if not gate.check.ok:
            return Outcome.of(gate.check)
    report.fields.update(resolution_fields(p, resolved.value))
    image = report.add(ensure_image(p, models))
    if image.value is None:
        return Outcome.of(image.check)
    plan = report.add(run_canary(p, models, image.value)).value or CanaryPlan()
    deployment = apply_workload(p, models, image.value, plan.stable_replicas)
    report.add(ensure_ingress(p, plan.route_weight, plan.canary_service))
    report.add(ensure_pod_monitor(p))
    available = report.add(check_rollout(p, deployment))
    report.add(named_image_digest(p, image.value, available.check.ok))
    predictor, rollout = models["predictor"], st.rollout_of(deployment)
    report.ready_message = (
        f"{predictor.name} v{predictor.version} on {rollout.available}/{rollout.desired} pods"
    )
    url = str(available.fields["url"])
    synced = report.add(sync_registry(p, models, available.check.ok, image.value, url))
    report.add(verify(p, models, image.value, report.serving()))
    return Outcome.of(synced.check, available.check)


def reconcile(
    kube: Kube,
    body: Mapping[str, Any],
    fresh: bool,
    observed: Mapping[str, Mapping[str, Any]] | None = None,
    new: bool = False,
    settings: OperatorSettings | None = None,
) -> Outcome:
    """One pass over a ModelDeployment; `fresh` re-resolves the models in the registry (a spec change).

    `observed` maps a child kind to its live object when the caller has it (a watch event), saving a GET;
    `new` says the resource was just created, so its children are created without looking first.
    Every exit writes the status it knows; no API or registry error escapes.
    """
    report = Report()
    try:
        p = Pass.start(kube, body, settings or OperatorSettings(), fresh, new, observed)
        outcome = converge(p, report)
    except SpecError as e:
        report.details["ModelsResolved"] = st.Check.stuck("InvalidSpec", str(e))
        outcome = Outcome.stall("InvalidSpec", str(e))
    except KubeError as e:
        check = (st.Check.stuck if e.permanent else st.Check.retrying)(e.reason, str(e))
        report.details[DETAIL_OF_KIND.get(e.kind, "Available")] = check
        outcome = Outcome.of(check)
    return finish(kube, body, report, outcome)


def finish(kube: Kube, body: Mapping[str, Any], report: Report, outcome: Outcome) -> Outcome:
    """Log a pass that did not converge, and write its status (a failed write is retried)."""
    meta = body["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    if outcome.action != "done":
        logger.warning("%s %s: %s: %s", where, outcome.action, outcome.reason, outcome.message)
    try:
        report_status(kube, body, report)
    except KubeError as e:  # the status itself could not be written: say so in the log, try again later
        logger.warning("%s status not written: %s: %s", where, e.reason, e)
        return Outcome.retry(e.reason, f"status not written: {e}")
    for event in report.events:  # after the status that records what they announce
        try:
            kube.post_event(body, event.kind, event.reason, event.message)
        except KubeError as e:  # an Event is a courtesy: the status holds the same
            logger.warning("%s event %s not posted: %s", where, event.reason, e.reason)
    return outcome


def report_status(kube: Kube, body: Mapping[str, Any], report: Report) -> None:
    """Compute the status and patch it only when it differs from the live one."""
    meta = body["metadata"]
    current = body.get("status") or {}
    generation = meta.get("generation", 0)
    conditions = st.compute_conditions(
        generation, report.details, report.ready_message, current.get("conditions") or [], st.utcnow()
    )
    desired: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "readyMessage": conditions[0]["message"],
        **report.fields,
    }
    if st.status_changed(current, desired):
        kube.patch_status(meta["namespace"], meta["name"], desired)
