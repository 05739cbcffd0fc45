"""A ModelDeployment's spec parsed into frozen dataclasses.

The dataclasses' defaults are the one statement of the spec's defaults: parse_spec applies them, and
crd.py writes them into the schema (tests/unit/test_crd.py checks that every schema default is the one
parse_spec applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_contract import DEFAULTS, ROLES

# The project's builder (tools/bake, `make image` builds it, `make image-push` pushes it beside the
# operator's image); MODELOPS_BUILDER_IMAGES lists the builders an operator runs.
DEFAULT_BUILDER_IMAGE = "modelops/modelops-builder:0.1.0"
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"memory": "1Gi"},
}
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
# A PodMonitor is created only when asked for.
POD_MONITOR_ENABLED = False


class SpecError(ValueError):
    """A spec that can never work (the API server's schema should have caught it)."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model named by version or alias."""

    name: str
    version: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class Registry:
    """Where the models live and the Secret holding credentials."""

    tracking_uri: str
    credentials_secret: str | None = None


@dataclass(frozen=True)
class Build:
    """An in-cluster image build."""

    repository: str
    base_image: str
    push_secret: str | None = None
    builder_image: str = DEFAULT_BUILDER_IMAGE
    timeout_seconds: int = 1800
    # Run the built image by digest (repository@sha256:...), not by its tag.
    pin_digest: bool = True
    # requests/limits merged over each build container's defaults (builders/build_job.py).
    resources: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    """The service image: pulled as is, or built."""

    reference: str | None = None
    build: Build | None = None
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Autoscaling:
    """Bounds for a HorizontalPodAutoscaler."""

    min_replicas: int
    max_replicas: int
    target_cpu: int = 70


@dataclass(frozen=True)
class Serving:
    """Settings handed to the service's environment."""

    service_name: str = DEFAULTS.service_name
    monitoring: bool = DEFAULTS.monitoring
    log_inputs: bool = DEFAULTS.log_inputs
    drift_window_size: int = DEFAULTS.drift_window_size
    drift_window_min_rows: int = DEFAULTS.drift_window_min_rows
    max_rows: int = DEFAULTS.max_rows
    max_body_bytes: int = DEFAULTS.max_body_bytes
    max_concurrency: int = DEFAULTS.max_concurrency


@dataclass(frozen=True)
class Ingress:
    """How the service is exposed outside the cluster."""

    host: str
    path: str = "/"
    class_name: str | None = None
    tls_secret: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """A Gateway API HTTPRoute instead of the Ingress: exact traffic weights while a canary runs."""

    gateway: str  # the parent Gateway's name
    gateway_namespace: str | None = None  # default: the ModelDeployment's namespace
    section_name: str | None = None
    hostnames: tuple[str, ...] = ()
    path: str = "/"


@dataclass(frozen=True)
class Promotion:
    """What the registry write-back records."""

    alias: str | None = None
    archive_existing_versions: bool = True


@dataclass(frozen=True)
class PodMetadata:
    """Extra labels and annotations for the serving pods (the operator's own keys take precedence)."""

    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PodMonitor:
    """A Prometheus Operator PodMonitor for the serving pods."""

    interval: str = "30s"
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Verification:
    """Record in the registry that these versions served well here (modelops_operator.verification)."""

    environment: str
    soak_seconds: int = 600
    require_drift_free: bool = True


@dataclass(frozen=True)
class Gate:
    """Roll out only versions verified in these environments."""

    environments: tuple[str, ...]


@dataclass(frozen=True)
class CanaryThresholds:
    """What a canary interval must meet (None: that check is off). Absolute, and relative to stable."""

    max_error_rate: float = 0.01  # 5xx share of the canary's model requests
    max_latency_p99_ms: float | None = None
    max_outlier_rate: float | None = None
    drift_free: bool = True  # no window drift on the canary pods
    max_latency_ratio: float | None = 2.0  # canary p99 / stable p99
    max_outlier_rate_delta: float | None = 0.1  # canary outlier share - stable outlier share
    max_prediction_shift: float | None = 0.2  # total variation distance of the predicted classes


@dataclass(frozen=True)
class Canary:
    """A challenger (spec.canary) given a share of the traffic, judged on model signals, then promoted or
    rolled back (modelops_operator.canary)."""

    models: tuple[tuple[str, ModelRef], ...]  # the roles named; the others stay the stable ones
    weight: int = 50  # percent, the last step
    steps: tuple[int, ...] = ()  # percents before `weight`, each held stepSeconds
    step_seconds: int = 60
    analysis_seconds: int = 120  # how long the last step is held before promotion
    interval_seconds: int = 15
    min_requests: int = 50  # canary model requests before any check judges
    failure_limit: int = 2  # consecutive failed intervals that roll back
    promote_alias: str = "champion"
    environment: str | None = None  # the registry records' environment (default: the verification's)
    thresholds: CanaryThresholds = CanaryThresholds()


@dataclass(frozen=True)
class DeploymentSpec:
    """The whole spec."""

    registry: Registry
    models: dict[str, ModelRef]
    image: Image
    replicas: int = 1
    autoscaling: Autoscaling | None = None
    resources: dict[str, dict[str, str]] = field(default_factory=lambda: DEFAULT_RESOURCES)
    serving: Serving = Serving()
    ingress: Ingress | None = None
    route: Route | None = None
    stage: str | None = None
    promotion: Promotion = Promotion()
    pod_metadata: PodMetadata = PodMetadata()
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    pod_monitor: PodMonitor | None = None
    verification: Verification | None = None
    gate: Gate | None = None
    canary: Canary | None = None


def uses_alias(raw: Mapping[str, Any] | None) -> bool:
    """Whether a raw .spec names at least one model by alias (such resources follow alias moves)."""
    models = dict((raw or {}).get("models") or {})
    models.update(
        {f"canary.{k}": v for k, v in (((raw or {}).get("canary") or {}).get("models") or {}).items()}
    )
    return any(isinstance(ref, Mapping) and ref.get("alias") for ref in models.values())


def _model_ref(role: str, raw: Mapping[str, Any]) -> ModelRef:
    version, alias = raw.get("version"), raw.get("alias")
    if not raw.get("name") or (version is None) == (alias is None):
        raise SpecError(f"models.{role} needs a name and exactly one of version or alias")
    return ModelRef(name=str(raw["name"]), version=None if version is None else str(version), alias=alias)


def _build(raw: Mapping[str, Any]) -> Build:
    return Build(
        repository=raw["repository"],
        base_image=raw["baseImage"],
        push_secret=(raw.get("pushSecret") or {}).get("name"),
        builder_image=raw.get("builderImage", Build.builder_image),
        timeout_seconds=int(raw.get("timeoutSeconds", Build.timeout_seconds)),
        pin_digest=bool(raw.get("pinDigest", Build.pin_digest)),
        resources={
            kind: {k: str(v) for k, v in values.items()}
            for kind, values in (raw.get("resources") or {}).items()
            if kind in ("requests", "limits") and values
        },
    )


def _image(raw: Mapping[str, Any]) -> Image:
    build_raw = raw.get("build")
    if (raw.get("reference") is None) == (build_raw is None):
        raise SpecError("image needs exactly one of reference or build")
    return Image(
        reference=raw.get("reference"),
        build=None if build_raw is None else _build(build_raw),
        pull_policy=raw.get("pullPolicy", Image.pull_policy),
        pull_secrets=tuple(s["name"] for s in raw.get("pullSecrets") or ()),
    )


def merged_resources(
    raw: Mapping[str, Any] | None, defaults: Mapping[str, Mapping[str, str]] = DEFAULT_RESOURCES
) -> dict[str, dict[str, str]]:
    """The user's requests and limits merged over `defaults` key by key: giving requests alone keeps the
    default memory limit; an empty value ("") drops that default."""
    if not raw:
        return {kind: dict(values) for kind, values in defaults.items()}
    merged = {}
    for kind in ("requests", "limits"):
        values = {**defaults.get(kind, {}), **{k: str(v) for k, v in (raw.get(kind) or {}).items()}}
        merged[kind] = {k: v for k, v in values.items() if v != ""}
    return merged


def _string_map(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (raw or {}).items()))


def _autoscaling(raw: Mapping[str, Any] | None) -> Autoscaling | None:
    if not raw:
        return None
    autoscaling = Autoscaling(
        min_replicas=int(raw["minReplicas"]),
        max_replicas=int(raw["maxReplicas"]),
        target_cpu=int(raw.get("targetCPUUtilizationPercentage", Autoscaling.target_cpu)),
    )
    if autoscaling.min_replicas > autoscaling.max_replicas:
        raise SpecError("autoscaling.minReplicas > maxReplicas")
    return autoscaling


def _serving(raw: Mapping[str, Any]) -> Serving:
    return Serving(
        service_name=raw.get("serviceName", Serving.service_name),
        monitoring=bool(raw.get("monitoring", Serving.monitoring)),
        log_inputs=bool(raw.get("logInputs", Serving.log_inputs)),
        drift_window_size=int(raw.get("driftWindowSize", Serving.drift_window_size)),
        drift_window_min_rows=int(raw.get("driftWindowMinRows", Serving.drift_window_min_rows)),
        max_rows=int(raw.get("maxRows", Serving.max_rows)),
        max_body_bytes=int(raw.get("maxBodyBytes", Serving.max_body_bytes)),
        max_concurrency=int(raw.get("maxConcurrency", Serving.max_concurrency)),
    )


def _ingress(raw: Mapping[str, Any] | None) -> Ingress | None:
    if not raw:
        return None
    return Ingress(
        host=raw["host"],
        path=raw.get("path", Ingress.path),
        class_name=raw.get("className"),
        tls_secret=(raw.get("tls") or {}).get("secretName"),
        annotations=tuple(sorted((raw.get("annotations") or {}).items())),
    )


def _route(raw: Mapping[str, Any] | None, ingress: Ingress | None) -> Route | None:
    if not raw:
        return None
    if ingress is not None:
        raise SpecError("route and ingress exclude each other: the route replaces the Ingress")
    gateway = raw.get("gateway") or {}
    return Route(
        gateway=str(gateway["name"]),
        gateway_namespace=gateway.get("namespace"),
        section_name=gateway.get("sectionName"),
        hostnames=tuple(str(h) for h in raw.get("hostnames") or ()),
        path=str(raw.get("path", Route.path)),
    )


def _pod_monitor(raw: Mapping[str, Any]) -> PodMonitor | None:
    if not raw.get("enabled", POD_MONITOR_ENABLED):
        return None
    return PodMonitor(
        interval=str(raw.get("interval", PodMonitor.interval)), labels=_string_map(raw.get("labels"))
    )


def _verification(raw: Mapping[str, Any] | None) -> Verification | None:
    if not raw:
        return None
    return Verification(
        environment=str(raw["environment"]),
        soak_seconds=int(raw.get("soakSeconds", Verification.soak_seconds)),
        require_drift_free=bool(raw.get("requireDriftFree", Verification.require_drift_free)),
    )


def _gate(raw: Mapping[str, Any] | None) -> Gate | None:
    if not raw:
        return None
    environments = tuple(str(e) for e in raw.get("requireVerifiedIn") or ())
    if not environments:
        raise SpecError("gate.requireVerifiedIn needs at least one environment")
    return Gate(environments)


def _promotion(raw: Mapping[str, Any]) -> Promotion:
    archive = raw.get("archiveExistingVersions", Promotion.archive_existing_versions)
    return Promotion(alias=raw.get("alias"), archive_existing_versions=bool(archive))


def _optional_float(raw: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = raw.get(key, default)
    return None if value is None else float(value)


def _thresholds(raw: Mapping[str, Any]) -> CanaryThresholds:
    d = CanaryThresholds
    return CanaryThresholds(
        max_error_rate=float(raw.get("maxErrorRate", d.max_error_rate)),
        max_latency_p99_ms=_optional_float(raw, "maxLatencyP99Ms", d.max_latency_p99_ms),
        max_outlier_rate=_optional_float(raw, "maxOutlierRate", d.max_outlier_rate),
        drift_free=bool(raw.get("driftFree", d.drift_free)),
        max_latency_ratio=_optional_float(raw, "maxLatencyRatio", d.max_latency_ratio),
        max_outlier_rate_delta=_optional_float(raw, "maxOutlierRateDelta", d.max_outlier_rate_delta),
        max_prediction_shift=_optional_float(raw, "maxPredictionShift", d.max_prediction_shift),
    )


def _canary(raw: Mapping[str, Any] | None, verification: Verification | None) -> Canary | None:
    if not raw:
        return None
    models_raw = raw.get("models") or {}
    unknown = sorted(set(models_raw) - set(ROLES))
    if unknown or not models_raw:
        raise SpecError(f"canary.models names one or more of {', '.join(ROLES)}")
    weight = int(raw.get("weight", Canary.weight))
    steps = tuple(int(s) for s in raw.get("steps") or ())
    if not 0 < weight < 100 or any(not 0 < s < weight for s in steps) or list(steps) != sorted(set(steps)):
        raise SpecError("canary.steps must rise strictly, each below canary.weight (1 to 99)")
    environment = raw.get("environment") or (verification.environment if verification else None)
    return Canary(
        models=tuple(
            (role, _model_ref(f"canary.{role}", models_raw[role])) for role in ROLES if role in models_raw
        ),
        weight=weight,
        steps=steps,
        step_seconds=int(raw.get("stepSeconds", Canary.step_seconds)),
        analysis_seconds=int(raw.get("analysisSeconds", Canary.analysis_seconds)),
        interval_seconds=int(raw.get("intervalSeconds", Canary.interval_seconds)),
        min_requests=int(raw.get("minRequests", Canary.min_requests)),
        failure_limit=int(raw.get("failureLimit", Canary.failure_limit)),
        promote_alias=str(raw.get("promoteAlias", Canary.promote_alias)),
        environment=None if environment is None else str(environment),
        thresholds=_thresholds(raw.get("thresholds") or {}),
    )


def parse_spec(raw: Mapping[str, Any]) -> DeploymentSpec:
    """Parse .spec (as stored by the API server) into a DeploymentSpec; raise SpecError when unusable."""
    try:
        registry_raw, models_raw, image_raw = raw["registry"], raw["models"], raw["image"]
    except (KeyError, TypeError) as e:
        raise SpecError(f"spec is missing {e}") from e
    pod_metadata_raw = raw.get("podMetadata") or {}
    return DeploymentSpec(
        registry=Registry(
            tracking_uri=registry_raw["trackingUri"],
            credentials_secret=(registry_raw.get("credentialsSecret") or {}).get("name"),
        ),
        models={role: _model_ref(role, models_raw.get(role) or {}) for role in ROLES},
        image=_image(image_raw),
        replicas=int(raw.get("replicas", DeploymentSpec.replicas)),
        autoscaling=_autoscaling(raw.get("autoscaling")),
        resources=merged_resources(raw.get("resources")),
        serving=_serving(raw.get("serving") or {}),
        ingress=_ingress(raw.get("ingress")),
        route=_route(raw.get("route"), _ingress(raw.get("ingress"))),
        stage=raw.get("stage"),
        promotion=_promotion(raw.get("promotion") or {}),
        pod_metadata=PodMetadata(
            labels=_string_map(pod_metadata_raw.get("labels")),
            annotations=_string_map(pod_metadata_raw.get("annotations")),
        ),
        progress_deadline_seconds=int(
            raw.get("progressDeadlineSeconds", DeploymentSpec.progress_deadline_seconds)
        ),
        pod_monitor=_pod_monitor(raw.get("podMonitor") or {}),
        verification=_verification(raw.get("verification")),
        gate=_gate(raw.get("gate")),
        canary=_canary(raw.get("canary"), _verification(raw.get("verification"))),
    )
