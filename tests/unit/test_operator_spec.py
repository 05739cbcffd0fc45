"""Spec parsing: the samples parse, defaults apply, contradictions are refused."""

import copy
from pathlib import Path

import pytest
import yaml

from modelops_operator.spec import (
    DEFAULT_PROGRESS_DEADLINE_SECONDS,
    DEFAULT_RESOURCES,
    ModelRef,
    PodMetadata,
    SpecError,
    parse_spec,
    uses_alias,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def sample(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_samples_parse(name: str) -> None:
    spec = parse_spec(sample(name)["spec"])
    assert set(spec.models) == {"predictor", "drift", "outlier"}


def test_staging_sample_values() -> None:
    spec = parse_spec(sample("wine-quality-staging.yaml")["spec"])
    assert spec.models["predictor"] == ModelRef(name="wine_quality", version="1")
    assert spec.stage == "Staging"
    assert spec.promotion.alias == "staging"
    assert spec.image.reference
    assert spec.image.build is None
    assert spec.ingress is not None
    assert spec.ingress.host == "wine-staging.modelops.local"
    assert spec.resources == DEFAULT_RESOURCES
    assert spec.serving.drift_window_min_rows == 100


def test_production_sample_values() -> None:
    spec = parse_spec(sample("wine-quality-production.yaml")["spec"])
    assert spec.models["drift"] == ModelRef(name="wine_quality_drift", alias="champion")
    assert spec.autoscaling is not None
    assert (
        spec.autoscaling.min_replicas,
        spec.autoscaling.max_replicas,
    ) == (2, 5)
    assert spec.registry.credentials_secret == "mlflow-credentials"
    assert spec.image.pull_secrets == ("registry-pull",)
    assert spec.ingress is not None
    assert spec.ingress.tls_secret == "wine-example-com-tls"
    assert spec.resources["limits"] == {"memory": "2Gi"}


def test_build_sample_values() -> None:
    spec = parse_spec(sample("wine-quality-build.yaml")["spec"])
    assert spec.image.reference is None
    assert spec.image.build is not None
    assert spec.image.build.push_secret == "registry-push"
    assert spec.image.build.timeout_seconds == 1800


def _mutated(path: list[str], value: object) -> dict:
    raw = copy.deepcopy(sample("wine-quality-staging.yaml")["spec"])
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is None:
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["models", "predictor", "version"], None),  # neither version nor alias
        (["models", "predictor", "alias"], "champion"),  # both
        (["image", "build"], {"repository": "r", "baseImage": "b"}),  # reference and build
        (["image", "reference"], None),  # neither
        (["models"], None),
        (["autoscaling"], {"minReplicas": 5, "maxReplicas": 2}),
    ],
)
def test_contradictions_are_spec_errors(path: list[str], value: object) -> None:
    with pytest.raises(SpecError):
        parse_spec(_mutated(path, value))


def test_numeric_version_becomes_string() -> None:
    raw = _mutated(["models", "predictor", "version"], 4)
    assert parse_spec(raw).models["predictor"].version == "4"


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"predictor": {"name": "a", "version": "1"}, "drift": {"name": "b", "version": "2"}}, False),
        ({"predictor": {"name": "a", "version": "1"}, "drift": {"name": "b", "alias": "champion"}}, True),
        ({"predictor": {"name": "a", "alias": "champion"}}, True),
        ({"predictor": {"name": "a", "alias": ""}}, False),
        ({}, False),
    ],
)
def test_uses_alias(models: dict, expected: bool) -> None:
    assert uses_alias({"models": models}) is expected


def test_uses_alias_on_the_samples() -> None:
    assert uses_alias(sample("wine-quality-production.yaml")["spec"])
    assert not uses_alias(sample("wine-quality-staging.yaml")["spec"])
    assert not uses_alias(None)


def test_pod_metadata_and_progress_deadline_defaults() -> None:
    spec = parse_spec(sample("wine-quality-staging.yaml")["spec"])
    assert spec.pod_metadata == PodMetadata()
    assert spec.progress_deadline_seconds == DEFAULT_PROGRESS_DEADLINE_SECONDS == 600


def test_pod_metadata_and_progress_deadline_parse() -> None:
    raw = sample("wine-quality-staging.yaml")["spec"]
    raw["podMetadata"] = {"labels": {"team": "risk", "tier": "gold"}, "annotations": {"a/b": "1"}}
    raw["progressDeadlineSeconds"] = 30
    spec = parse_spec(raw)
    assert spec.pod_metadata.labels == (("team", "risk"), ("tier", "gold"))
    assert spec.pod_metadata.annotations == (("a/b", "1"),)
    assert spec.progress_deadline_seconds == 30


def test_resources_merge_over_the_defaults() -> None:
    """Giving only requests keeps the default memory limit; a limit goes only when asked ("")."""
    base = sample("wine-quality-staging.yaml")["spec"]
    only_requests = parse_spec({**base, "resources": {"requests": {"cpu": "1"}}})
    assert only_requests.resources == {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    dropped = parse_spec({**base, "resources": {"limits": {"memory": ""}}})
    assert dropped.resources["limits"] == {}
    assert dropped.resources["requests"] == DEFAULT_RESOURCES["requests"]
