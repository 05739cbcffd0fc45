"""kopf registration only: `kopf run -m modelops_operator.handlers` (add -n NS or -A, --liveness, --peering).

ModelDeployment changes run the reconcile recipe with fresh registry resolution; events on owned children
(Deployment, Service, Ingress, HPA, build Job) reconcile their owner with the versions resolved for its
current generation, which restores deleted or hand-edited children and tracks rollouts without polling.
Events of the owner's pods count only while a container is failing (crash loop, image pull): a pod's
status does not change its Deployment, and the status then names the pod; healthy pods cost nothing.
Timers (TIMERS, registered at start-up with the intervals of the settings) do the rest: re-resolving
aliases (only a moved alias leads to a reconcile and to any write), retrying a failed registry write-back
or PodMonitor, advancing a soak, re-reading the registry while a gate holds versions back, and reading
the ready pods' drift into status.drift (written only when it changes; a new drift is a Warning Event).

The settings are loaded once, at start-up, into kopf's memo (a bad value stops the operator with one
line naming it). Every handler ends through `end()`, the one error policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import kopf

from modelops_operator import drift_probe, metrics
from modelops_operator import drift_status as ds
from modelops_operator.builders.common import MANAGED_BY, OWNER_LABEL
from modelops_operator.kube import Kube, KubeError, load_config
from modelops_operator.reconciler import reconcile
from modelops_operator.registry import RegistryError
from modelops_operator.resolution import moved_aliases
from modelops_operator.resource import GROUP, PLURAL, VERSION
from modelops_operator.settings import ConfigurationError, OperatorSettings
from modelops_operator.spec import uses_alias
from modelops_operator.status import condition, is_failing, is_true, utcnow
from modelops_operator.steps import Outcome

CHILD_LABELS: dict[str, Any] = {
    "app.kubernetes.io/managed-by": MANAGED_BY,
    OWNER_LABEL: kopf.PRESENT,
}
logger = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

# How a handler's non-done outcome is carried out: `spec` handlers raise kopf's errors (kopf retries
# them); a `timer`'s retry is retried by kopf too, but a stall waits for the next tick (the status holds
# it); an `event` handler is not retried by kopf: the next event or timer looks again.
Mode = Literal["spec", "timer", "event"]


def kopf_error(
    outcome: Outcome, retry: int, settings: OperatorSettings, floor: float = 0.0
) -> kopf.PermanentError | kopf.TemporaryError | None:
    """The kopf error that carries out an Outcome: none when done, a retry after its delay (or the
    backoff for this retry, at least `floor`), or a permanent error until the spec changes."""
    if outcome.action == "stall":
        return kopf.PermanentError(f"{outcome.reason}: {outcome.message}")
    if outcome.action == "retry":
        delay = max(settings.backoff(retry) if outcome.delay is None else outcome.delay, floor)
        return kopf.TemporaryError(
            f"{outcome.reason}: {outcome.message}; retrying in {delay:.0f}s", delay=delay
        )
    return None


def end(
    outcome: Outcome | None, retry: int, settings: OperatorSettings, mode: Mode, floor: float = 0.0
) -> None:
    """The one error policy: every handler's pass ends here (None: the resource was gone)."""
    if outcome is None or outcome.action == "done":
        return
    error = kopf_error(outcome, retry, settings, floor)
    if mode == "event" or (mode == "timer" and isinstance(error, kopf.PermanentError)):
        return  # said in the status and the log by the pass; the next event or tick looks again
    assert error is not None
    raise error


def _kube(memo: kopf.Memo) -> Kube:
    return memo["kube"]


def _settings(memo: kopf.Memo) -> OperatorSettings:
    return memo["settings"]


def _latest(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """The ModelDeployment as stored now; None when gone or being deleted."""
    owner = kube.get(f"{GROUP}/{VERSION}", "ModelDeployment", namespace, name)
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None
    return owner


def _reconcile(memo: kopf.Memo, trigger: str, latest: dict[str, Any], fresh: bool, **kwargs: Any) -> Outcome:
    """reconcile(), counted in the operator's metrics by what triggered it and how it ended."""
    outcome = reconcile(_kube(memo), latest, fresh=fresh, settings=_settings(memo), **kwargs)
    metrics.count_reconcile(trigger, outcome.action, outcome.reason)
    return outcome


def _reconcile_latest(
    memo: kopf.Memo, trigger: str, namespace: str, name: str, fresh: bool
) -> Outcome | None:
    """Reconcile the resource as stored now (None when it is gone or being deleted)."""
    with _locks[(namespace, name)]:
        latest = _latest(_kube(memo), namespace, name)
        return None if latest is None else _reconcile(memo, trigger, latest, fresh=fresh)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Load the settings, connect, register the timers; kopf keeps its bookkeeping in annotations
    (status belongs to the schema) and posts Events only for warnings."""
    try:
        loaded = OperatorSettings.load(os.environ)
    except ConfigurationError as e:
        # SystemExit leaves kopf's event loop at once: one clear line, exit status 1, nothing started.
        sys.exit(f"modelops-operator: not starting: {e}")
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
    load_config()
    memo["settings"], memo["kube"] = loaded, Kube()
    register_timers(loaded)
    if loaded.operator_metrics_address:
        metrics.serve(loaded.operator_metrics_address)
        logger.info("operator metrics on %s/metrics", loaded.operator_metrics_address)


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="reconcile")
def reconcile_spec(
    body: kopf.Body, reason: str, retry: int, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """A new or changed spec: resolve in the registry, then converge."""
    assert namespace is not None  # the CRD is namespaced
    # The event's body may predate a status written by a child event meanwhile: read the latest.
    # A first creation attempt has nothing to be stale against (and its children do not exist yet).
    if reason == "create" and retry == 0:
        with _locks[(namespace, name)]:
            outcome: Outcome | None = _reconcile(memo, "spec", dict(body), fresh=True, new=True)
    else:
        outcome = _reconcile_latest(memo, "spec", namespace, name, fresh=True)
    end(outcome, retry, _settings(memo), "spec")


# ----------------------------------------------------------------------------------------------- timers


def _pass_timer(trigger: str, fresh: bool) -> Callable[..., None]:
    """A timer that runs one pass over the resource as stored now."""

    def run_pass(namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any) -> None:
        assert namespace is not None  # the CRD is namespaced
        outcome = _reconcile_latest(memo, trigger, namespace, name, fresh=fresh)
        end(outcome, retry, _settings(memo), "timer")

    run_pass.__name__ = run_pass.__qualname__ = f"timer_{trigger.replace('-', '_')}"
    return run_pass


def follow_aliases(
    *, body: kopf.Body, namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    """Re-resolve the aliases; reconcile only when one has moved (otherwise: no API write, no Event).

    Returns None so that kopf patches nothing; timers keep their state in memory.
    """
    assert namespace is not None  # the CRD is namespaced
    kube, settings = _kube(memo), _settings(memo)
    try:
        # kopf's live view of the resource: at rest this costs no request to the API server.
        if not moved_aliases(kube, body, settings):
            return
        with _locks[(namespace, name)]:
            latest = _latest(kube, namespace, name)
            moved = [] if latest is None else moved_aliases(kube, latest, settings)
            if latest is None or not moved:  # gone, or another handler has caught up meanwhile
                return
            logger.info("%s/%s: alias moved for %s; reconciling", namespace, name, ", ".join(moved))
            outcome = _reconcile(memo, "alias", latest, fresh=True)
    except RegistryError as e:  # a deleted alias is permanent: the recorded versions keep serving
        logger.warning("%s/%s: aliases not re-resolved: %s", namespace, name, e)
        outcome = Outcome.failed(e.reason, f"following aliases: {e}", e.permanent)
    end(outcome, retry, settings, "timer", floor=settings.alias_poll_seconds)


async def drift_status(
    body: kopf.Body, namespace: str | None, name: str, retry: int, memo: kopf.Memo, **_: Any
) -> None:
    """Read the ready pods' drift windows into status.drift; write only when it says something new."""
    assert namespace is not None  # the CRD is namespaced
    kube, settings = _kube(memo), _settings(memo)
    current = (body.get("status") or {}).get("drift")
    desired = await drift_probe.observe(kube, body, settings.metrics_url_template, utcnow())
    patch = ds.drift_patch(current, desired)
    if patch is None:
        return
    try:
        await asyncio.to_thread(kube.patch_status, namespace, name, {"drift": patch})
    except KubeError as e:
        end(Outcome.failed(e.reason, f"drift not written: {e}", e.permanent), retry, settings, "timer")
        return
    if ds.newly_drifted(current, desired):
        kopf.warn(body, reason="DriftDetected", message=f"{desired['summary']} ({desired['message']})")


def _condition_false(ctype: str) -> Callable[..., bool]:
    def when(status: kopf.Status, **_: Any) -> bool:
        found = condition(status, ctype)
        return found is not None and found.get("status") == "False"

    return when


def _sync_failed(status: kopf.Status, **_: Any) -> bool:
    synced = condition(status, "RegistrySynced")
    return synced is not None and synced.get("status") == "False" and synced.get("reason") == "SyncFailed"


def _soaking(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool(spec.get("verification")) and not is_true(status, "Verified")


def _canary_running(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    """A canary to analyse, a decision not yet in the registry, or canary pods a route has just left."""
    state: dict[str, Any] = dict(status.get("canary") or {})
    if state.get("draining"):
        return True
    if not spec.get("canary"):
        return False
    return state.get("phase", "Progressing") == "Progressing" or not state.get("recorded", True)


def _uses_alias(spec: kopf.Spec, **_: Any) -> bool:
    return uses_alias(spec)


def _is_ready(status: kopf.Status, **_: Any) -> bool:
    return is_true(status, "Ready")


@dataclass(frozen=True)
class Timer:
    """A timer on ModelDeployments: its handler, when it runs, and its interval's setting."""

    id: str
    handler: Callable[..., Any]
    when: Callable[..., bool]
    interval: str  # the OperatorSettings field that holds its interval (0 turns the timer off)
    first_soon: bool = False  # the first run after min(interval, 5 s), not after a whole interval


TIMERS = (
    # Retry a failed registry write-back (only while RegistrySynced is False/SyncFailed).
    Timer("retry-registry-sync", _pass_timer("sync-retry", False), _sync_failed, "sync_retry_seconds"),
    # Try the PodMonitor again while the cluster could not take it (e.g. the CRDs come later).
    Timer(
        "retry-pod-monitor",
        _pass_timer("pod-monitor-retry", False),
        _condition_false("PodMonitorReady"),
        "pod_monitor_retry_seconds",
    ),
    # Advance a soak (spec.verification) until its record is written; its start is in the status.
    Timer("verification", _pass_timer("verification", False), _soaking, "verification_check_seconds"),
    # Look for the verification record again while the gate holds versions back.
    Timer("gate", _pass_timer("gate", True), _condition_false("PromotionAllowed"), "gate_poll_seconds"),
    Timer("follow-aliases", follow_aliases, _uses_alias, "alias_poll_seconds"),
    # Analyse a running canary (each pass analyses only when spec.canary.intervalSeconds have passed).
    Timer("canary", _pass_timer("canary", False), _canary_running, "canary_poll_seconds"),
    Timer("drift-status", drift_status, _is_ready, "drift_poll_seconds", first_soon=True),
)


def register_timers(settings: OperatorSettings) -> None:
    """Register TIMERS with the intervals of the loaded settings (before kopf starts watching)."""
    for timer in TIMERS:
        interval = float(getattr(settings, timer.interval))
        if interval <= 0:
            continue
        kopf.timer(
            GROUP,
            VERSION,
            PLURAL,
            id=timer.id,
            interval=interval,
            initial_delay=min(interval, 5.0) if timer.first_soon else interval,
            when=timer.when,
        )(timer.handler)


# ----------------------------------------------------------------------------------------------- events


@kopf.on.event(GROUP, VERSION, PLURAL, id="metrics")
def resource_metrics(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """Keep the operator's per-resource condition gauges equal to the stored status."""
    meta = body["metadata"]
    if event.get("type") == "DELETED":
        metrics.forget_resource(meta["namespace"], meta["name"])
    else:
        metrics.record_resource(body)


def _owner_changed(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    if event.get("type") is None:  # the initial listing: on.resume covers the owners
        return
    owner_name = body["metadata"]["labels"][OWNER_LABEL]
    assert namespace is not None  # children are namespaced
    outcome = None
    with _locks[(namespace, owner_name)]:
        owner = _latest(_kube(memo), namespace, owner_name)
        # Until the spec handler has resolved the current generation, it is in charge.
        if owner is not None and (owner.get("status") or {}).get("resolvedGeneration") == owner[
            "metadata"
        ].get("generation"):
            # The event's object is the live child, unless the event says it is gone (or it is not the
            # child of the owner's name, e.g. the canary's Deployment).
            gone = event.get("type") == "DELETED" or body["metadata"]["name"] != owner_name
            observed = {} if gone else {body["kind"]: dict(body)}
            outcome = _reconcile(memo, "child", owner, fresh=False, observed=observed)
    end(outcome, 0, _settings(memo), "event")


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
