"""Status as kstatus reads it, computed purely from what the reconcile observed.

Ready is always present; Reconciling and Stalled appear only while true; the details are DETAIL_TYPES
(those in NON_GATING_TYPES are reported but never hold Ready back), with CamelCase reasons. A rollout that
is not available names its failing pods (crash loops, image pulls) when it has any.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DETAIL_TYPES = (
    "ModelsResolved",
    "PromotionAllowed",
    "ImageReady",
    "Available",
    "IngressReady",
    "RegistrySynced",
    "PodMonitorReady",
    "Verified",
    "Canary",
)
# Reported, never holding Ready back: a registry outage, a cluster without the Prometheus Operator or a
# soak still running must not take a serving model out of Ready.
NON_GATING_TYPES = ("RegistrySynced", "PodMonitorReady", "Verified", "Canary")
# Every condition type the status can hold; a missing Reconciling or Stalled means False.
SUMMARY_TYPES = ("Ready", "Reconciling", "Stalled")
CONDITION_TYPES = (*SUMMARY_TYPES, *DETAIL_TYPES)
# Waiting reasons a kubelet gives a container that will not start by itself, and the reason we report.
FAILING_WAITING_REASONS = {
    "CrashLoopBackOff": "PodsCrashLooping",
    "ImagePullBackOff": "ImagePullFailed",
    "ErrImagePull": "ImagePullFailed",
    "ErrImageNeverPull": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "CreateContainerConfigError": "PodsFailing",
    "CreateContainerError": "PodsFailing",
    "RunContainerError": "PodsFailing",
}
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"


def utcnow() -> str:
    """Now, as Kubernetes writes times."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Check:
    """One detail's outcome: ok, or not with whether it is stuck (needs a spec change), still moving by
    itself (an event or a timer brings the next pass), or to be retried (`retry`, after `delay` seconds;
    None: the caller's growing backoff)."""

    ok: bool
    reason: str
    message: str
    stalled: bool = False
    retry: bool = False
    delay: float | None = None

    @classmethod
    def passed(cls, reason: str, message: str) -> Check:
        """A satisfied detail."""
        return cls(True, reason, message)

    @classmethod
    def waiting(cls, reason: str, message: str) -> Check:
        """A detail still progressing."""
        return cls(False, reason, message)

    @classmethod
    def retrying(cls, reason: str, message: str, delay: float | None = None) -> Check:
        """A detail that failed for a temporary reason: the pass is tried again."""
        return cls(False, reason, message, retry=True, delay=delay)

    @classmethod
    def stuck(cls, reason: str, message: str) -> Check:
        """A detail that will not progress without intervention."""
        return cls(False, reason, message, stalled=True)


@dataclass(frozen=True)
class Rollout:
    """Counts read from a Deployment."""

    desired: int
    updated: int
    ready: int
    available: int
    total: int
    selector: str


def deployment_check(deployment: Mapping[str, Any] | None) -> Check:
    """Whether the Deployment is fully available at its current generation (crash-looping pods are not)."""
    if deployment is None:
        return Check.waiting("DeploymentMissing", "Deployment not created yet")
    meta, spec, status = deployment["metadata"], deployment.get("spec") or {}, deployment.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return Check.waiting("RolloutPending", "Deployment controller has not seen the new spec yet")
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Check.stuck(
                "ProgressDeadlineExceeded", f"rollout stalled: {cond.get('message', '')}".strip()
            )
    r = rollout_of(deployment)
    if r.updated < r.desired:
        return Check.waiting("RollingOut", f"{r.updated}/{r.desired} pods updated")
    if r.total > r.updated:
        return Check.waiting("RollingOut", f"{r.total - r.updated} old pods terminating")
    if r.available < r.desired:
        return Check.waiting("PodsNotReady", f"{r.available}/{r.desired} pods available")
    if spec.get("replicas", 1) == 0:
        return Check.passed("ScaledToZero", "scaled to zero replicas")
    return Check.passed("DeploymentAvailable", f"{r.available}/{r.desired} pods available")


def rollout_of(deployment: Mapping[str, Any] | None) -> Rollout:
    """Replica counts and selector of a Deployment (zeros when absent)."""
    if deployment is None:
        return Rollout(0, 0, 0, 0, 0, "")
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return Rollout(
        desired=int(spec.get("replicas", 1)),
        updated=int(status.get("updatedReplicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        total=int(status.get("replicas", 0)),
        selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
    )


@dataclass(frozen=True)
class ContainerFailure:
    """A container of a pod that is waiting in a state it will not leave by itself."""

    pod: str
    container: str
    waiting_reason: str
    restarts: int
    detail: str = ""

    @property
    def reason(self) -> str:
        """The condition reason: PodsCrashLooping, ImagePullFailed or PodsFailing."""
        return FAILING_WAITING_REASONS[self.waiting_reason]

    def describe(self) -> str:
        """E.g. pod x: container model-server CrashLoopBackOff (5 restarts; last exit code 1, Error)."""
        restarts = f"{self.restarts} restart{'' if self.restarts == 1 else 's'}"
        detail = f"; {self.detail}" if self.detail else ""
        return f"pod {self.pod}: container {self.container} {self.waiting_reason} ({restarts}{detail})"


def container_failures(pod: Mapping[str, Any]) -> list[ContainerFailure]:
    """The containers (init containers first) of a pod stuck in a failing waiting state."""
    name = (pod.get("metadata") or {}).get("name", "")
    status = pod.get("status") or {}
    failures = []
    for container in [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason not in FAILING_WAITING_REASONS:
            continue
        terminated = (container.get("lastState") or {}).get("terminated") or {}
        if reason == "CrashLoopBackOff" and terminated:
            code, why = terminated.get("exitCode"), terminated.get("reason")
            detail = f"last exit code {code}" + (f", {why}" if why else "")
        else:  # e.g. Back-off pulling image "x", or secret "y" not found
            detail = str(waiting.get("message") or "")
        restarts = int(container.get("restartCount") or 0)
        failures.append(ContainerFailure(name, container.get("name", ""), reason, restarts, detail))
    return failures


def is_failing(pod: Mapping[str, Any]) -> bool:
    """Whether a pod has a container in a failing waiting state (kopf filter: healthy pods cost nothing)."""
    return bool(container_failures(pod))


def current_template_hash(
    deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> str | None:
    """The pod-template-hash of the Deployment's current ReplicaSet (same revision), if it exists yet."""
    revision = (deployment["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    for rs in replica_sets:
        meta = rs.get("metadata") or {}
        if revision is not None and (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return (meta.get("labels") or {}).get(TEMPLATE_HASH_LABEL)
    return None


def explain_rollout(check: Check, pods: Sequence[Mapping[str, Any]]) -> Check:
    """An Available check that is not ok, with the first failing pod (by name) named in its message.

    While the rollout is still moving, the reason becomes the failure's (PodsCrashLooping,
    ImagePullFailed, PodsFailing); a stalled rollout keeps ProgressDeadlineExceeded and adds the cause.
    """
    if check.ok:
        return check
    failing = sorted(
        (f for pod in pods for f in container_failures(pod)[:1]), key=lambda f: (f.pod, f.container)
    )
    if not failing:
        return check
    first = failing[0]
    more = f" (and {len(failing) - 1} more failing pods)" if len(failing) > 1 else ""
    message = f"{check.message.rstrip('.')}; {first.describe()}{more}"
    if check.stalled:
        return Check.stuck(check.reason, message)
    return Check.waiting(first.reason, message)


def ingress_check(expected: bool, ingress: Mapping[str, Any] | None) -> Check:
    """IngressReady: not requested, applied (no address yet), or with an address from the controller."""
    if not expected:
        return Check.passed("NotRequested", "no ingress requested")
    if ingress is None:
        return Check.waiting("IngressMissing", "Ingress not created yet")
    lb = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if lb:
        address = lb[0].get("hostname") or lb[0].get("ip") or ""
        return Check.passed("AddressAssigned", f"Ingress has address {address}")
    return Check.passed("IngressApplied", "Ingress applied; no address reported by a controller yet")


def _condition(
    ctype: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(ctype)
    since = before["lastTransitionTime"] if before and before.get("status") == status else now
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def compute_conditions(
    generation: int,
    details: Mapping[str, Check],
    ready_message: str,
    previous: Sequence[Mapping[str, Any]],
    now: str,
) -> list[dict[str, Any]]:
    """Ready first, then Reconciling or Stalled (only while true), then the details in order.

    Ready needs every present detail outside NON_GATING_TYPES to be ok.
    """
    before = {c["type"]: c for c in previous if "type" in c}
    gating = [details[t] for t in DETAIL_TYPES if t in details and t not in NON_GATING_TYPES]
    blocking = next((c for c in gating if not c.ok), None)
    conditions = []
    if blocking is None:
        conditions.append(_condition("Ready", True, "Ready", ready_message, generation, before, now))
    else:
        conditions.append(
            _condition("Ready", False, blocking.reason, blocking.message, generation, before, now)
        )
        kind = "Stalled" if blocking.stalled else "Reconciling"
        conditions.append(_condition(kind, True, blocking.reason, blocking.message, generation, before, now))
    for ctype in DETAIL_TYPES:
        if ctype in details:
            d = details[ctype]
            conditions.append(_condition(ctype, d.ok, d.reason, d.message, generation, before, now))
    return conditions


def condition(status: Mapping[str, Any] | None, ctype: str) -> Mapping[str, Any] | None:
    """The condition of a type in a status, if present."""
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def is_true(status: Mapping[str, Any] | None, ctype: str) -> bool:
    """Whether the condition is present and True."""
    c = condition(status, ctype)
    return c is not None and c.get("status") == "True"


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether patching `desired` into `current` would change anything (None means delete, also inside
    a nested object: a merge patch removes those keys)."""
    current = current or {}
    for key, value in desired.items():
        if value is None:
            if key in current:
                return True
        elif _without_none(current.get(key)) != _without_none(value):
            return True
    return False


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
