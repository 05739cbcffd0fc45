"""The reconcile recipe: resolve -> image -> build children -> apply -> report status -> write back.

reconcile() reads top to bottom as the recipe (converge()), then writes the status once, whatever
happened: a registry or Kubernetes error classified as permanent is Stalled with its reason, a temporary
one is Reconciling and retried. Handlers (handlers.py) turn the returned Outcome into kopf's errors.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelops_operator import status as st
from modelops_operator.builders.build_job import (
    GENERATION_ANNOTATION,
    build_job,
    build_job_name,
    built_image,
    derive_image_tag,
    job_state,
)
from modelops_operator.builders.deployment import build_deployment
from modelops_operator.builders.hpa import build_hpa
from modelops_operator.builders.ingress import build_ingress, ingress_url
from modelops_operator.builders.podmonitor import API_VERSION as POD_MONITOR_API
from modelops_operator.builders.podmonitor import build_pod_monitor
from modelops_operator.builders.service import build_service, service_url
from modelops_operator.kube import Kube, KubeError
from modelops_operator.promotion import promote, promotion_requested, sync_key
from modelops_operator.registry import (
    Credentials,
    RegistryClient,
    RegistryError,
    Resolution,
    ResolvedModel,
    resolve_model,
    resolve_models,
)
from modelops_operator.settings import OperatorSettings
from modelops_operator.spec import ROLES, DeploymentSpec, SpecError, parse_spec
from modelops_operator.verification import (
    gate_check,
    soak_key,
    soak_step,
    verification_record,
    verified_tag,
    version_list,
)

logger = logging.getLogger(__name__)
SECRET_RETRY_SECONDS = OperatorSettings.secret_retry_seconds
SYNC_RETRY_SECONDS = OperatorSettings.sync_retry_seconds


# Which status detail a failed call on a child kind belongs to (anything else: Available).
DETAIL_OF_KIND = {"Secret": "ModelsResolved", "Job": "ImageReady", "Ingress": "IngressReady"}


@dataclass(frozen=True)
class Outcome:
    """What the caller does next: `done`; `retry` after `delay` seconds (None: the caller's backoff,
    growing with each retry); or `stall` until the spec (or the cluster's RBAC) changes."""

    action: Literal["done", "retry", "stall"]
    reason: str
    message: str = ""
    delay: float | None = None

    @classmethod
    def done(cls, reason: str) -> Outcome:
        """Converged, or converging by itself (a rollout in progress: child events bring the next pass)."""
        return cls("done", reason)

    @classmethod
    def retry(cls, reason: str, message: str, delay: float | None = None) -> Outcome:
        """Something temporary failed: try again later."""
        return cls("retry", reason, message, delay)

    @classmethod
    def stall(cls, reason: str, message: str) -> Outcome:
        """Cannot progress without a change by a person."""
        return cls("stall", reason, message)


@dataclass
class Report:
    """Details and status fields gathered during one reconcile."""

    details: dict[str, st.Check] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    ready_message: str = ""


def utcnow() -> str:
    """Now, as Kubernetes writes times."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials_for(kube: Kube, namespace: str, spec: DeploymentSpec) -> Credentials | None:
    """Credentials from the referenced Secret; None when the Secret is missing (no Secret: anonymous)."""
    if not spec.registry.credentials_secret:
        return Credentials()
    data = kube.secret_data(namespace, spec.registry.credentials_secret)
    return None if data is None else Credentials.from_secret_data(data)


def cached_resolution(body: Mapping[str, Any]) -> Resolution | None:
    """The resolution recorded in status for the current generation, if any."""
    status = body.get("status") or {}
    models = status.get("models") or {}
    if status.get("resolvedGeneration") != body["metadata"].get("generation") or set(models) != set(ROLES):
        return None
    return Resolution(
        models={role: ResolvedModel.from_status(models[role]) for role in ROLES},
        training_run_id=status.get("trainingRunId"),
    )


def moved_roles(recorded: Mapping[str, ResolvedModel], current: Mapping[str, ResolvedModel]) -> list[str]:
    """The roles whose freshly resolved version differs from the recorded one (pure)."""
    return [
        role
        for role, model in current.items()
        if role not in recorded or recorded[role].version != model.version
    ]


def resolution_message(resolution: Resolution) -> str:
    """ModelsResolved's message: the versions, and the training-run warning if any."""
    listed = ", ".join(f"{m.name}/{m.version}" for m in resolution.models.values())
    return f"{listed}; {resolution.warning}" if resolution.warning else listed


def report_status(kube: Kube, body: Mapping[str, Any], report: Report) -> None:
    """Compute the status and patch it only when it differs from the live one."""
    meta = body["metadata"]
    current = body.get("status") or {}
    conditions = st.compute_conditions(
        meta.get("generation", 0),
        report.details,
        report.ready_message,
        current.get("conditions") or [],
        utcnow(),
    )
    ready = conditions[0]
    desired: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 0),
        "conditions": conditions,
        "readyMessage": ready["message"],
        **report.fields,
    }
    if st.status_changed(current, desired):
        kube.patch_status(meta["namespace"], meta["name"], desired)


def _apply_optional(
    kube: Kube,
    desired: dict[str, Any] | None,
    where: tuple[str, str, str, str],
    live: Mapping[str, Any] | None,
    check_stale: bool,
    new: bool,
) -> dict[str, Any] | None:
    """Apply desired; when not wanted, delete a left-over child (only looked for after a spec change)."""
    if desired is not None:
        return kube.apply(desired, live, new)
    if check_stale and kube.get(*where) is not None:
        kube.delete(*where)
    return None


def ensure_pod_monitor(
    kube: Kube, body: Mapping[str, Any], spec: DeploymentSpec, check_stale: bool
) -> st.Check | None:
    """Apply (or remove) the PodMonitor; its detail, or None when none is wanted.

    A cluster without the monitoring.coreos.com CRDs answers 404, and an operator without RBAC for them
    403: either is reported in PodMonitorReady (which does not hold Ready back; handlers.py tries again
    on a timer while it is False); temporary failures raise KubeError like any child's.
    """
    meta = body["metadata"]
    where = (POD_MONITOR_API, "PodMonitor", meta["namespace"], meta["name"])
    wanted = build_pod_monitor(body, spec.pod_monitor) if spec.pod_monitor else None
    try:
        _apply_optional(kube, wanted, where, None, check_stale and wanted is None, False)
    except KubeError as e:
        if wanted is None:  # removing a left-over: a missing CRD means there is nothing to remove
            if e.status == 404 or e.permanent:
                return None
            raise
        if e.status == 404:
            message = (
                f"{POD_MONITOR_API} PodMonitor is not served by this cluster (the Prometheus Operator's "
                "CRDs are missing); the pods keep their prometheus.io/* annotations"
            )
            return st.Check.waiting("PodMonitorCRDMissing", message)
        if e.permanent:
            return st.Check.waiting(e.reason, str(e))
        raise
    if spec.pod_monitor is None:
        return None
    return st.Check.passed(
        "Applied", f"PodMonitor {meta['name']} scrapes the pods every {spec.pod_monitor.interval}"
    )


def ensure_image(
    kube: Kube, body: Mapping[str, Any], spec: DeploymentSpec, models: Mapping[str, ResolvedModel]
) -> tuple[str | None, st.Check]:
    """The image to run: the given reference, or the build Job's result (starting the Job when needed)."""
    if spec.image.reference:
        return spec.image.reference, st.Check.passed("ImageReference", spec.image.reference)
    build = spec.image.build
    assert build is not None  # parse_spec guarantees reference xor build
    meta = body["metadata"]
    generation = meta.get("generation", 0)
    job_name = build_job_name(meta["name"], derive_image_tag(models, build))
    job = kube.get("batch/v1", "Job", meta["namespace"], job_name)
    state, message = job_state(job)
    if job is not None and state in ("failed", "timedout"):
        # A failed build is final for the generation that started it; a spec edit tries again.
        started_for = int((job["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION, "0"))
        if started_for < generation:
            kube.delete("batch/v1", "Job", meta["namespace"], job_name)
            return None, st.Check.waiting(
                "BuildRestarting", "previous build failed; rebuilding for the new spec"
            )
    if state == "missing":
        kube.apply(build_job(body, spec, models, generation))
        return None, st.Check.waiting("BuildRunning", f"build Job {job_name} started")
    if state == "running":
        return None, st.Check.waiting("BuildRunning", f"build Job {job_name} running")
    if state == "timedout":
        return None, st.Check.stuck("BuildTimeout", message)
    if state == "failed":
        return None, st.Check.stuck("BuildFailed", message)
    image = built_image(models, build)
    return image, st.Check.passed("ImageBuilt", image)


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


def sync_registry(
    body: Mapping[str, Any],
    spec: DeploymentSpec,
    credentials: Callable[[], Credentials | None],
    models: Mapping[str, ResolvedModel],
    available: bool,
    image: str,
    url: str,
) -> tuple[st.Check, str | None]:
    """RegistrySynced and the key written (None when nothing new was written)."""
    meta, current = body["metadata"], body.get("status") or {}
    if not promotion_requested(spec):
        return st.Check.passed("NotRequested", "no stage or alias requested"), None
    if not available:
        return st.Check.waiting(
            "WaitingForAvailable", "the registry is updated once the deployment is available"
        ), None
    key = sync_key(meta["namespace"], meta["name"], spec, models)
    done = f"stage {spec.stage or '-'}, alias {spec.promotion.alias or '-'} recorded in the registry"
    if current.get("registrySyncedKey") == key:
        return st.Check.passed("Synced", done), None
    found = credentials()
    if found is None:
        return st.Check.waiting("CredentialsSecretMissing", "registry credentials Secret not found"), None
    try:
        client = RegistryClient(spec.registry.tracking_uri, found)
        promote(client, meta["namespace"], meta["name"], spec, models, image, url, utcnow())
    except RegistryError as e:
        return st.Check.waiting("SyncFailed", f"registry write-back failed, retrying: {e}"), None
    return st.Check.passed("Synced", done), key


def check_gate(
    kube: Kube,
    namespace: str,
    spec: DeploymentSpec,
    models: Mapping[str, ResolvedModel],
    credentials: Credentials | None,
) -> st.Check:
    """PromotionAllowed: every version carries the record of every environment spec.gate names (read
    from the registry on every pass: the status is not trusted with it)."""
    assert spec.gate is not None
    found = credentials if credentials is not None else credentials_for(kube, namespace, spec)
    if found is None:
        message = f"registry credentials Secret {spec.registry.credentials_secret} not found"
        return st.Check.waiting("CredentialsSecretMissing", message)
    client = RegistryClient(spec.registry.tracking_uri, found)
    try:
        tags = {role: client.version_tags(m.name, m.version) for role, m in models.items()}
    except RegistryError as e:
        return (st.Check.stuck if e.permanent else st.Check.waiting)(e.reason, f"gate not checked: {e}")
    return gate_check(models, tags, spec.gate.environments)


def verify(
    body: Mapping[str, Any],
    spec: DeploymentSpec,
    credentials: Callable[[], Credentials | None],
    models: Mapping[str, ResolvedModel],
    image: str,
    report: Report,
    cluster: str,
) -> None:
    """Advance spec.verification's soak into `report` (Verified, status.verification); write the record
    on each version when the soak is over."""
    current = body.get("status") or {}
    if spec.verification is None:
        if current.get("verification") is not None:
            report.fields["verification"] = None
        return
    meta, verification = body["metadata"], spec.verification
    gating = [
        report.details[t] for t in st.DETAIL_TYPES if t in report.details and t not in st.NON_GATING_TYPES
    ]
    serving = next((c for c in gating if not c.ok), st.Check.passed("Ready", "ready"))
    drift_state = (current.get("drift") or {}).get("state")
    generation = meta.get("generation", 0)
    step = soak_step(
        current.get("verification"),
        environment=verification.environment,
        key=soak_key(generation, image, models),
        generation=generation,
        soak_seconds=verification.soak_seconds,
        now=dt.datetime.now(dt.UTC),
        serving=serving,
        drift_state=drift_state if spec.serving.monitoring else None,
        require_drift_free=verification.require_drift_free,
    )
    check, entry = step.check, step.entry
    if step.record_due:
        now = utcnow()
        record = verification_record(
            environment=verification.environment,
            namespace=meta["namespace"],
            name=meta["name"],
            cluster=cluster,
            generation=generation,
            image=image,
            models=models,
            since=entry["since"],
            until=now,
            drift_state=drift_state if spec.serving.monitoring else "Disabled",
        )
        check = record_verification(spec, credentials, models, verification.environment, record)
        if check.ok:
            entry = {**entry, "verifiedAt": now}
    report.details["Verified"] = check
    report.fields["verification"] = entry


def record_verification(
    spec: DeploymentSpec,
    credentials: Callable[[], Credentials | None],
    models: Mapping[str, ResolvedModel],
    environment: str,
    record: str,
) -> st.Check:
    """Write the record on each version; RecordFailed (the soak's timer tries again) when it cannot."""
    found = credentials()
    if found is None:
        return st.Check.waiting("CredentialsSecretMissing", "registry credentials Secret not found")
    client = RegistryClient(spec.registry.tracking_uri, found)
    try:
        # The predictor last: `modelops promote` looks for the record on the predictor, so once it is
        # there the drift and outlier versions have theirs too.
        for role in sorted(models, key=lambda r: r == "predictor"):
            client.set_version_tag(models[role].name, models[role].version, verified_tag(environment), record)
    except RegistryError as e:
        return st.Check.waiting("RecordFailed", f"soak done; writing the record failed, retrying: {e}")
    return st.Check.passed("Recorded", f"{version_list(models)} verified in {environment}, recorded")


def reconcile(
    kube: Kube,
    body: Mapping[str, Any],
    fresh: bool,
    observed: Mapping[str, Mapping[str, Any]] | None = None,
    new: bool = False,
    cluster: str = "",
) -> Outcome:
    """One pass over a ModelDeployment; `fresh` re-resolves the models in the registry (a spec change).

    `observed` maps a child kind to its live object when the caller has it (a watch event), saving a GET;
    `new` says the resource was just created, so its children are created without looking first;
    `cluster` names this cluster in verification records.
    Every exit writes the status it knows; no API or registry error escapes.
    """
    meta = body["metadata"]
    report = Report()
    try:
        outcome = converge(kube, body, fresh, observed or {}, new, report, cluster)
    except KubeError as e:
        detail = DETAIL_OF_KIND.get(e.kind, "Available")
        report.details[detail] = (st.Check.stuck if e.permanent else st.Check.waiting)(e.reason, str(e))
        outcome = Outcome.stall(e.reason, str(e)) if e.permanent else Outcome.retry(e.reason, str(e))
    if outcome.action != "done":
        logger.warning(
            "%s/%s %s: %s: %s",
            meta["namespace"],
            meta["name"],
            outcome.action,
            outcome.reason,
            outcome.message,
        )
    try:
        report_status(kube, body, report)
    except KubeError as e:  # the status itself could not be written: say so in the log, try again later
        logger.warning("%s/%s status not written: %s: %s", meta["namespace"], meta["name"], e.reason, e)
        return Outcome.retry(e.reason, f"status not written: {e}")
    return outcome


def converge(
    kube: Kube,
    body: Mapping[str, Any],
    fresh: bool,
    observed: Mapping[str, Mapping[str, Any]],
    new: bool,
    report: Report,
    cluster: str = "",
) -> Outcome:
    """The recipe: spec -> models -> image -> children -> rollout -> registry write-back, into `report`.

    Raises KubeError from the API edge (reconcile() turns it into the status); registry errors are
    handled here because the registry's answer decides what the status says.
    """
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError as e:
        report.details["ModelsResolved"] = st.Check.stuck("InvalidSpec", str(e))
        return Outcome.stall("InvalidSpec", str(e))

    # 1. Models.
    resolution = None if fresh else cached_resolution(body)
    credentials: Credentials | None = None
    if resolution is None:
        credentials = credentials_for(kube, ns, spec)
        if credentials is None:
            message = f"registry credentials Secret {spec.registry.credentials_secret} not found"
            report.details["ModelsResolved"] = st.Check.waiting("CredentialsSecretMissing", message)
            return Outcome.retry("CredentialsSecretMissing", message, SECRET_RETRY_SECONDS)
        try:
            resolution = resolve_models(RegistryClient(spec.registry.tracking_uri, credentials), spec.models)
        except RegistryError as e:
            check = st.Check.stuck if e.permanent else st.Check.waiting
            report.details["ModelsResolved"] = check(e.reason, str(e))
            return Outcome.stall(e.reason, str(e)) if e.permanent else Outcome.retry(e.reason, str(e))
    models = resolution.models
    report.details["ModelsResolved"] = st.Check.passed("Resolved", resolution_message(resolution))

    # 1b. The gate: versions not verified where spec.gate requires are not rolled out. status.models keeps
    # what the pods serve; the gate timer (handlers.py) looks again until the record appears.
    if spec.gate is not None:
        gate = check_gate(kube, ns, spec, models, credentials)
        report.details["PromotionAllowed"] = gate
        if not gate.ok:
            if gate.stalled:
                return Outcome.stall(gate.reason, gate.message)
            return Outcome.done(gate.reason)
    report.fields.update(
        models={role: m.to_status() for role, m in models.items()},
        resolvedGeneration=meta.get("generation", 0),
        trainingRunId=resolution.training_run_id,
    )

    # 2. Image.
    image, image_check = ensure_image(kube, body, spec, models)
    report.details["ImageReady"] = image_check
    if image is None:
        if image_check.stalled:
            return Outcome.stall(image_check.reason, image_check.message)
        return Outcome.done(image_check.reason)  # the build Job's events bring the next pass
    report.fields["image"] = image

    # 3. Children.
    baked = spec.image.build is not None
    deployment = kube.apply(
        build_deployment(body, spec, models, image, baked), observed.get("Deployment"), new
    )
    kube.apply(build_service(body), observed.get("Service"), new)
    ingress_wanted = build_ingress(body, spec.ingress) if spec.ingress else None
    ingress_at = ("networking.k8s.io/v1", "Ingress", ns, name)
    ingress = _apply_optional(
        kube, ingress_wanted, ingress_at, observed.get("Ingress"), fresh and not new, new
    )
    hpa_wanted = build_hpa(body, spec.autoscaling) if spec.autoscaling else None
    hpa_at = ("autoscaling/v2", "HorizontalPodAutoscaler", ns, name)
    _apply_optional(kube, hpa_wanted, hpa_at, observed.get("HorizontalPodAutoscaler"), fresh and not new, new)

    monitor = ensure_pod_monitor(kube, body, spec, fresh and not new)
    if monitor is not None:
        report.details["PodMonitorReady"] = monitor

    # 4. Status of the rollout.
    available = explain_unavailable(kube, deployment, st.deployment_check(deployment))
    rollout = st.rollout_of(deployment)
    url = ingress_url(spec.ingress) if spec.ingress else service_url(body)
    report.details["Available"] = available
    report.details["IngressReady"] = st.ingress_check(spec.ingress is not None, ingress)
    report.fields.update(
        url=url, replicas=rollout.total, readyReplicas=rollout.ready, selector=rollout.selector
    )
    predictor = models["predictor"]
    report.ready_message = (
        f"{predictor.name} v{predictor.version} on {rollout.available}/{rollout.desired} pods"
    )

    # 5. Registry write-back, never holding Ready back.
    def registry_credentials() -> Credentials | None:  # read the Secret only when writing
        return credentials if credentials is not None else credentials_for(kube, ns, spec)

    synced, key = sync_registry(body, spec, registry_credentials, models, available.ok, image, url)
    report.details["RegistrySynced"] = synced
    if key:
        report.fields["registrySyncedKey"] = key

    # 6. Verification (a soak, then the registry record), never holding Ready back.
    verify(body, spec, registry_credentials, models, image, report, cluster)
    if not synced.ok and synced.reason in ("SyncFailed", "CredentialsSecretMissing"):
        return Outcome.retry(synced.reason, synced.message, SYNC_RETRY_SECONDS)
    if available.stalled:
        return Outcome.stall(available.reason, available.message)
    return Outcome.done(available.reason)


def moved_aliases(kube: Kube, body: Mapping[str, Any]) -> list[str]:
    """Re-resolve the aliases of a resolved ModelDeployment; the roles whose alias now names another version.

    Reads only (the Secret, and the registry through its alias cache); never writes. Nothing to follow
    while the spec handler has not resolved the current generation, or when no model is named by alias.
    Raises RegistryError when the registry cannot answer.
    """
    recorded = cached_resolution(body)
    if recorded is None:
        return []
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError:
        return []
    aliased = {role: ref for role, ref in spec.models.items() if ref.alias is not None}
    if not aliased:
        return []
    credentials = credentials_for(kube, body["metadata"]["namespace"], spec)
    if credentials is None:
        message = f"registry credentials Secret {spec.registry.credentials_secret} not found"
        raise RegistryError(message)  # temporary: the Secret may come back
    client = RegistryClient(spec.registry.tracking_uri, credentials)
    current = {role: resolve_model(client, ref) for role, ref in aliased.items()}
    return moved_roles(recorded.models, current)
