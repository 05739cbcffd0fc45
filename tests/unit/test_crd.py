"""The CRD schema: generated copies are current, and the schema has the promised shape."""

from pathlib import Path

import pytest
import yaml

from modelops_operator import crd
from modelops_operator.spec import parse_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", crd.CRD_TARGETS, ids=str)
def test_generated_copy_matches_schema(target: Path) -> None:
    path = REPO / target
    assert path.is_file(), f"{target} missing: run python -m modelops_operator.crd --write"
    assert path.read_text() == crd.render_crd(), (
        f"{target} is stale: run python -m modelops_operator.crd --write"
    )


def test_check_cli_reports_a_stale_copy(tmp_path: Path) -> None:
    assert crd.main(["--write", "--root", str(tmp_path)]) == 0
    assert crd.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / crd.CRD_TARGETS[1]).write_text("stale\n")
    assert crd.main(["--check", "--root", str(tmp_path)]) == 1


def _version() -> dict:
    return yaml.safe_load(crd.render_crd())["spec"]["versions"][0]


def test_names_and_subresources() -> None:
    doc = yaml.safe_load(crd.render_crd())
    assert doc["metadata"]["name"] == "modeldeployments.modelops.dev"
    assert doc["spec"]["names"]["shortNames"] == ["mdep"]
    assert doc["spec"]["scope"] == "Namespaced"
    sub = _version()["subresources"]
    assert sub["status"] == {}
    assert sub["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_printer_columns_default_and_wide() -> None:
    columns = {c["name"]: c for c in _version()["additionalPrinterColumns"]}
    wide = ["Image", "Digest", "Drift", "Canary"]
    assert list(columns) == ["Model", "Version", "Stage", "Ready", "Message", "URL", "Age", *wide]
    assert [n for n, c in columns.items() if c.get("priority") == 1] == wide


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural() -> None:
    """Every node has a type (or int-or-string); no preserve-unknown-fields escape hatch."""
    root = _version()["schema"]["openAPIV3Schema"]
    for path, node in _walk(root):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (crd.VERSION_PATTERN, "3", True),
        (crd.VERSION_PATTERN, "12", True),
        (crd.VERSION_PATTERN, "v3", False),
        (crd.VERSION_PATTERN, "", False),
        (crd.ALIAS_PATTERN, "champion", True),
        (crd.ALIAS_PATTERN, "_staging-2", True),
        (crd.ALIAS_PATTERN, "3", False),
        (crd.ALIAS_PATTERN, "bad alias", False),
        (crd.DNS_LABEL_PATTERN, "wine-quality", True),
        (crd.DNS_LABEL_PATTERN, "Wine", False),
        (crd.DNS_LABEL_PATTERN, "1wine", False),
        (crd.HOST_PATTERN, "wine.example.com", True),
        (crd.HOST_PATTERN, "*.example.com", True),
        (crd.HOST_PATTERN, "Wine.example.com", False),
        (crd.LABEL_VALUE_PATTERN, "", True),
        (crd.LABEL_VALUE_PATTERN, "team-a.v1_x", True),
        (crd.LABEL_VALUE_PATTERN, "-team", False),
        (crd.LABEL_VALUE_PATTERN, "has space", False),
    ],
)
def test_patterns(pattern: str, value: str, matches: bool) -> None:
    import re

    assert bool(re.fullmatch(pattern.strip("^$"), value)) is matches


def test_validations_present() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["registry", "models", "image"]
    predictor = spec["properties"]["models"]["properties"]["predictor"]
    assert predictor["x-kubernetes-validations"][0]["rule"] == "has(self.version) != has(self.alias)"
    assert (
        spec["properties"]["image"]["x-kubernetes-validations"][0]["rule"]
        == "has(self.reference) != has(self.build)"
    )
    assert spec["properties"]["stage"]["enum"] == ["Staging", "Production"]
    replicas = spec["properties"]["replicas"]
    assert (replicas["minimum"], replicas["maximum"]) == (0, crd.MAX_REPLICAS)


def test_pod_metadata_and_progress_deadline() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    pod_metadata = spec["podMetadata"]["properties"]
    labels, annotations = pod_metadata["labels"], pod_metadata["annotations"]
    assert labels["additionalProperties"] == {
        "type": "string",
        "maxLength": 63,
        "pattern": crd.LABEL_VALUE_PATTERN,
    }
    assert annotations["additionalProperties"] == {"type": "string"}
    assert labels["maxProperties"] == annotations["maxProperties"] == crd.MAX_POD_METADATA_ENTRIES
    deadline = spec["progressDeadlineSeconds"]
    assert (deadline["type"], deadline["minimum"], deadline["maximum"], deadline["default"]) == (
        "integer",
        10,
        86400,
        600,
    )


def _schema_defaults(schema: dict, path: str = "") -> dict[str, object]:
    """Every `default` in a schema, by its dotted path below .spec."""
    found: dict[str, object] = {}
    for key, sub in (schema.get("properties") or {}).items():
        where = f"{path}.{key}" if path else key
        if "default" in sub:
            found[where] = sub["default"]
        found.update(_schema_defaults(sub, where))
    return found


# A spec where each object that holds a default is present with only its required fields, and where each
# default lands in the parsed spec. A new default in the schema fails the completeness check below until
# it is listed here, so the schema and the parser can never state two defaults for one field.
_MINIMAL_SPEC = {
    "registry": {"trackingUri": "http://mlflow:5000"},
    "models": {r: {"name": r, "version": "1"} for r in ("predictor", "drift", "outlier")},
    "image": {"build": {"repository": "registry:5000/wine", "baseImage": "svc:1"}},
    "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
    "serving": {},
    "ingress": {"host": "wine.example"},
    "podMonitor": {"enabled": True},
    "verification": {"environment": "staging"},
    "promotion": {},
    "canary": {"models": {"predictor": {"name": "p", "alias": "challenger"}}, "thresholds": {}},
}
_PARSED = {
    "image.pullPolicy": lambda s: s.image.pull_policy,
    "image.build.builderImage": lambda s: s.image.build.builder_image,
    "image.build.timeoutSeconds": lambda s: s.image.build.timeout_seconds,
    "image.build.pinDigest": lambda s: s.image.build.pin_digest,
    "replicas": lambda s: s.replicas,
    "autoscaling.targetCPUUtilizationPercentage": lambda s: s.autoscaling.target_cpu,
    "serving.serviceName": lambda s: s.serving.service_name,
    "serving.monitoring": lambda s: s.serving.monitoring,
    "serving.logInputs": lambda s: s.serving.log_inputs,
    "serving.driftWindowSize": lambda s: s.serving.drift_window_size,
    "serving.driftWindowMinRows": lambda s: s.serving.drift_window_min_rows,
    "serving.maxRows": lambda s: s.serving.max_rows,
    "serving.maxBodyBytes": lambda s: s.serving.max_body_bytes,
    "serving.maxConcurrency": lambda s: s.serving.max_concurrency,
    "ingress.path": lambda s: s.ingress.path,
    "podMonitor.enabled": lambda s: s.pod_monitor is not None,
    "podMonitor.interval": lambda s: s.pod_monitor.interval,
    "progressDeadlineSeconds": lambda s: s.progress_deadline_seconds,
    "verification.soakSeconds": lambda s: s.verification.soak_seconds,
    "verification.requireDriftFree": lambda s: s.verification.require_drift_free,
    "promotion.archiveExistingVersions": lambda s: s.promotion.archive_existing_versions,
    "route.path": lambda s: s.route.path,
    "canary.weight": lambda s: s.canary.weight,
    "canary.stepSeconds": lambda s: s.canary.step_seconds,
    "canary.analysisSeconds": lambda s: s.canary.analysis_seconds,
    "canary.intervalSeconds": lambda s: s.canary.interval_seconds,
    "canary.minRequests": lambda s: s.canary.min_requests,
    "canary.failureLimit": lambda s: s.canary.failure_limit,
    "canary.promoteAlias": lambda s: s.canary.promote_alias,
    "canary.thresholds.maxErrorRate": lambda s: s.canary.thresholds.max_error_rate,
    "canary.thresholds.driftFree": lambda s: s.canary.thresholds.drift_free,
    "canary.thresholds.maxLatencyRatio": lambda s: s.canary.thresholds.max_latency_ratio,
    "canary.thresholds.maxOutlierRateDelta": lambda s: s.canary.thresholds.max_outlier_rate_delta,
    "canary.thresholds.maxPredictionShift": lambda s: s.canary.thresholds.max_prediction_shift,
}


def test_every_schema_default_is_the_one_the_parser_applies() -> None:
    defaults = _schema_defaults(crd.spec_schema())
    assert set(defaults) == set(_PARSED)
    without_pod_monitor = parse_spec({**_MINIMAL_SPEC, "podMonitor": {}})
    assert _PARSED["podMonitor.enabled"](without_pod_monitor) is defaults["podMonitor.enabled"]
    parsed = parse_spec(_MINIMAL_SPEC)
    # route replaces the Ingress: its defaults are read from a spec with a route instead
    routed = {k: v for k, v in _MINIMAL_SPEC.items() if k != "ingress"}
    routed["route"] = {"gateway": {"name": "g"}}
    assert _PARSED["route.path"](parse_spec(routed)) == defaults["route.path"]
    for path, default in defaults.items():
        if path not in ("podMonitor.enabled", "route.path"):
            assert _PARSED[path](parsed) == default, path
