"""kopf registration only: `kopf run -m modelops_operator.handlers` (add -n NS or -A, --liveness, --peering).

ModelDeployment changes run the reconcile recipe with fresh registry resolution; events on owned children
(Deployment, Service, Ingress, HPA, build Job) reconcile their owner with the versions resolved for its
current generation, which restores deleted or hand-edited children and tracks rollouts without polling.
Events of the owner's pods count only while a container is failing (crash loop, image pull): a pod's
status does not change its Deployment, and the status then names the pod; healthy pods cost nothing.
Resources that name a model by alias are polled: every MODELOPS_ALIAS_POLL_SECONDS (default 60) the aliases
are re-resolved, and only a moved alias leads to a reconcile (and to any write).
A soak (spec.verification) is looked at every MODELOPS_VERIFICATION_CHECK_SECONDS (15) until its record is
written; a gate (spec.gate) holding versions back re-reads the registry every MODELOPS_GATE_POLL_SECONDS (30).
Ready resources have their pods' drift read into status.drift every MODELOPS_DRIFT_POLL_SECONDS (default
60; 0 turns it off), written only when it changes; a newly drifted window is also a Warning Event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import defaultdict
from typing import Any

import kopf

from modelops_operator import drift_probe, metrics
from modelops_operator import drift_status as ds
from modelops_operator.builders.common import MANAGED_BY, OWNER_LABEL
from modelops_operator.kube import Kube, load_config
from modelops_operator.reconciler import Outcome, moved_aliases, reconcile, utcnow
from modelops_operator.registry import RegistryError
from modelops_operator.resource import GROUP, PLURAL, VERSION
from modelops_operator.settings import ConfigurationError, OperatorSettings
from modelops_operator.spec import uses_alias
from modelops_operator.status import condition, is_failing, is_true

CHILD_LABELS: dict[str, Any] = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    OWNER_LABEL: kopf.PRESENT,
}
try:  # once per process: `kopf run` imports this module at start-up
    SETTINGS = OperatorSettings.load(os.environ)
except ConfigurationError as _error:
    sys.exit(f"modelops-operator: not starting: {_error}")
logger = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_kube: Kube | None = None


def kube() -> Kube:
    """The process-wide API client (created at start-up)."""
    global _kube
    if _kube is None:
        load_config()
        _kube = Kube()
    return _kube


def kopf_error(
    outcome: Outcome, retry: int, floor: float = 0.0
) -> kopf.PermanentError | kopf.TemporaryError | None:
    """The kopf error that carries out an Outcome: none when done, a retry after its delay (or the
    backoff for this retry, at least `floor`), or a permanent error until the spec changes."""
    if outcome.action == "stall":
        return kopf.PermanentError(f"{outcome.reason}: {outcome.message}")
    if outcome.action == "retry":
        delay = max(SETTINGS.backoff(retry) if outcome.delay is None else outcome.delay, floor)
        return kopf.TemporaryError(
            f"{outcome.reason}: {outcome.message}; retrying in {delay:.0f}s", delay=delay
        )
    return None


def _latest(namespace: str, name: str) -> dict[str, Any] | None:
    """The ModelDeployment as stored now; None when gone or being deleted."""
    owner = kube().get(f"{GROUP}/{VERSION}", "ModelDeployment", namespace, name)
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None
    return owner


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Annotations for kopf's own bookkeeping (status belongs to the schema), Events only for warnings."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="modelops.dev", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.execution.max_workers = 8
    # Only our serving and build pods are streamed (server-side), not every pod in the watched namespaces.
    settings.watching.label_selectors["v1", "pods"] = (
        f"app.kubernetes.io/managed-by={MANAGED_BY},{OWNER_LABEL}"
    )
    kube()
    if SETTINGS.operator_metrics_address:
        metrics.serve(SETTINGS.operator_metrics_address)
        logger.info("operator metrics on %s/metrics", SETTINGS.operator_metrics_address)


def _reconcile(trigger: str, latest: dict[str, Any], fresh: bool, **kwargs: Any) -> Outcome:
    """reconcile(), counted in the operator's metrics by what triggered it and how it ended."""
    outcome = reconcile(kube(), latest, fresh=fresh, cluster=SETTINGS.cluster_name, **kwargs)
    metrics.count_reconcile(trigger, outcome.action, outcome.reason)
    return outcome


def _reconcile_latest(trigger: str, namespace: str | None, name: str, fresh: bool) -> None:
    """A timer's pass: reconcile the resource as stored now (nothing when it is gone or being deleted)."""
    assert namespace is not None  # the CRD is namespaced
    with _locks[(namespace, name)]:
        latest = _latest(namespace, name)
        if latest is not None:
            _reconcile(trigger, latest, fresh=fresh)


def _is_false(status: kopf.Status, ctype: str) -> bool:
    found = condition(status, ctype)
    return found is not None and found.get("status") == "False"


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="reconcile")
def reconcile_spec(
    body: kopf.Body, reason: str, retry: int, namespace: str | None, name: str, **_: Any
) -> None:
    """A new or changed spec: resolve in the registry, then converge."""
    assert namespace is not None  # the CRD is namespaced
    with _locks[(namespace, name)]:
        # The event's body may predate a status written by a child event meanwhile: read the latest.
        # A first creation attempt has nothing to be stale against (and its children do not exist yet).
        new = reason == "create" and retry == 0
        latest = dict(body) if new else _latest(namespace, name)
        if latest is None:
            return
        outcome = _reconcile("spec", latest, fresh=True, new=new)
    error = kopf_error(outcome, retry)
    if error is not None:
        raise error


def _needs_sync_retry(status: kopf.Status, **_: Any) -> bool:
    synced = condition(status, "RegistrySynced")
    return synced is not None and synced.get("status") == "False" and synced.get("reason") == "SyncFailed"


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.sync_retry_seconds,
    when=_needs_sync_retry,
    id="retry-registry-sync",
)
def retry_registry_sync(namespace: str | None, name: str, **_: Any) -> None:
    """Retry a failed registry write-back (runs only while RegistrySynced is False/SyncFailed)."""
    _reconcile_latest("sync-retry", namespace, name, fresh=False)


def _needs_pod_monitor_retry(status: kopf.Status, **_: Any) -> bool:
    return _is_false(status, "PodMonitorReady")


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.pod_monitor_retry_seconds,
    initial_delay=SETTINGS.pod_monitor_retry_seconds,
    when=_needs_pod_monitor_retry,
    id="retry-pod-monitor",
)
def retry_pod_monitor(namespace: str | None, name: str, **_: Any) -> None:
    """Try the PodMonitor again while the cluster could not take it (e.g. the Prometheus Operator's CRDs
    are installed after the ModelDeployment); serving is Ready meanwhile."""
    _reconcile_latest("pod-monitor-retry", namespace, name, fresh=False)


def _soaking(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool(spec.get("verification")) and not is_true(status, "Verified")


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.verification_check_seconds,
    initial_delay=SETTINGS.verification_check_seconds,
    when=_soaking,
    id="verification",
)
def check_verification(namespace: str | None, name: str, **_: Any) -> None:
    """Advance a soak (spec.verification) until its record is written; its start is in the status."""
    _reconcile_latest("verification", namespace, name, fresh=False)


def _awaiting_verification(status: kopf.Status, **_: Any) -> bool:
    return _is_false(status, "PromotionAllowed")


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.gate_poll_seconds,
    initial_delay=SETTINGS.gate_poll_seconds,
    when=_awaiting_verification,
    id="gate",
)
def poll_gate(namespace: str | None, name: str, **_: Any) -> None:
    """Look for the verification record again while the gate holds versions back (no spec change needed:
    the rollout proceeds once the record appears)."""
    _reconcile_latest("gate", namespace, name, fresh=True)


def _uses_alias(spec: kopf.Spec, **_: Any) -> bool:
    return uses_alias(spec)


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=SETTINGS.alias_poll_seconds,
    initial_delay=SETTINGS.alias_poll_seconds,
    when=_uses_alias,
    id="follow-aliases",
)
def follow_aliases(*, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any) -> None:
    """Re-resolve the aliases; reconcile only when one has moved (otherwise: no API write, no Event).

    Returns None so that kopf patches nothing; timers keep their state in memory.
    """
    assert namespace is not None  # the CRD is namespaced
    delay = max(SETTINGS.backoff(int(kwargs.get("retry", 0))), SETTINGS.alias_poll_seconds)
    try:
        # kopf's live view of the resource: at rest this costs no request to the API server.
        if not moved_aliases(kube(), body):
            return
        with _locks[(namespace, name)]:
            latest = _latest(namespace, name)
            moved = [] if latest is None else moved_aliases(kube(), latest)
            if latest is None or not moved:  # gone, or another handler has caught up meanwhile
                return
            logger.info("%s/%s: alias moved for %s; reconciling", namespace, name, ", ".join(moved))
            outcome = _reconcile("alias", latest, fresh=True)
    except RegistryError as e:
        if e.permanent:  # e.g. the alias was deleted: keep serving the recorded versions
            logger.warning("%s/%s: aliases not re-resolved: %s", namespace, name, e)
            return
        message = f"{e.reason} following aliases ({e}), retrying in {delay:.0f}s"
        raise kopf.TemporaryError(message, delay=delay) from e
    error = kopf_error(outcome, int(kwargs.get("retry", 0)), floor=SETTINGS.alias_poll_seconds)
    if isinstance(error, kopf.TemporaryError):  # e.g. the registry failed during the reconcile
        raise error
    # A stall is in the status now; the next poll looks again.


def _is_ready(status: kopf.Status, **_: Any) -> bool:
    return is_true(status, "Ready")


async def drift_status(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    """Read the ready pods' drift windows into status.drift; write only when it says something new."""
    assert namespace is not None  # the CRD is namespaced
    current = (body.get("status") or {}).get("drift")
    desired = await drift_probe.observe(kube(), body, SETTINGS.metrics_url_template, utcnow())
    patch = ds.drift_patch(current, desired)
    if patch is None:
        return
    await asyncio.to_thread(kube().patch_status, namespace, name, {"drift": patch})
    if ds.newly_drifted(current, desired):
        kopf.warn(body, reason="DriftDetected", message=f"{desired['summary']} ({desired['message']})")


if SETTINGS.drift_poll_seconds > 0:
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=SETTINGS.drift_poll_seconds,
        initial_delay=min(SETTINGS.drift_poll_seconds, 5.0),  # the first look soon after Ready
        when=_is_ready,
        id="drift-status",
    )(drift_status)


@kopf.on.event(GROUP, VERSION, PLURAL, id="metrics")
def resource_metrics(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """Keep the operator's per-resource condition gauges equal to the stored status."""
    meta = body["metadata"]
    if event.get("type") == "DELETED":
        metrics.forget_resource(meta["namespace"], meta["name"])
    else:
        metrics.record_resource(body)


def _owner_changed(event: kopf.RawEvent, body: kopf.Body, namespace: str | None, **_: Any) -> None:
    if event.get("type") is None:  # the initial listing: on.resume covers the owners
        return
    owner_name = body["metadata"]["labels"][OWNER_LABEL]
    assert namespace is not None  # children are namespaced
    with _locks[(namespace, owner_name)]:
        owner = _latest(namespace, owner_name)
        if owner is None:
            return
        # Until the spec handler has resolved the current generation, it is in charge.
        if (owner.get("status") or {}).get("resolvedGeneration") != owner["metadata"].get("generation"):
            return
        # The event's object is the live child, unless the event says it is gone.
        observed = {} if event.get("type") == "DELETED" else {body["kind"]: dict(body)}
        _reconcile("child", owner, fresh=False, observed=observed)


def _pod_failing(body: kopf.Body, **_: Any) -> bool:
    return is_failing(body)


for _group_version, _plural in (
    ("apps/v1", "deployments"),
    ("v1", "services"),
    ("networking.k8s.io/v1", "ingresses"),
    ("autoscaling/v2", "horizontalpodautoscalers"),
    ("batch/v1", "jobs"),
):
    kopf.on.event(_group_version, _plural, labels=CHILD_LABELS, id=f"child-{_plural}")(_owner_changed)
kopf.on.event("v1", "pods", labels=CHILD_LABELS, when=_pod_failing, id="child-pods")(_owner_changed)
