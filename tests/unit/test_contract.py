"""The operator -> service contract: what the Deployment builder writes, the service's settings read back.

Both sides import modelops_contract; these tests make sure they also mean the same values, and that the
CRD, the spec parser and the service share one set of defaults.
"""

from __future__ import annotations

from typing import Any

import pytest

import modelops_contract as contract
from modelops_operator.builders.deployment import build_deployment
from modelops_operator.crd import spec_schema
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import parse_spec
from modelops_service.settings import Settings, load_settings

OWNER = {"metadata": {"name": "m", "namespace": "ml", "uid": "u-1", "generation": 1}}
MODELS = {
    role: ResolvedModel(name=f"model_{role}", version="7", run_id="r", source="s") for role in contract.ROLES
}


def container_environment(deployment: dict[str, Any]) -> dict[str, str]:
    """The plain values of the serving container's environment (secretKeyRefs are not values)."""
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


def spec(**serving: Any) -> Any:
    return parse_spec(
        {
            "registry": {"trackingUri": "http://mlflow.ml.svc:5000"},
            "models": {role: {"name": f"model_{role}", "version": "7"} for role in contract.ROLES},
            "image": {"reference": "modelops/modelops-service:0.1.0"},
            "serving": serving,
        }
    )


@pytest.mark.parametrize(
    "serving",
    [
        {},  # every default
        {
            "serviceName": "FraudScorer",
            "monitoring": False,
            "logInputs": False,
            "driftWindowSize": 2000,
            "driftWindowMinRows": 300,
            "maxRows": 50,
            "maxBodyBytes": 4096,
        },
    ],
)
def test_what_the_builder_writes_the_service_reads(serving: dict[str, Any]) -> None:
    parsed = spec(**serving)
    settings = load_settings(container_environment(build_deployment(OWNER, parsed, MODELS, "img:1")))
    assert settings.service_name == parsed.serving.service_name
    assert settings.monitoring_enabled is parsed.serving.monitoring
    assert settings.log_inputs is parsed.serving.log_inputs
    assert settings.drift.window_size == parsed.serving.drift_window_size
    assert settings.drift.window_min_rows == parsed.serving.drift_window_min_rows
    assert settings.max_rows == parsed.serving.max_rows
    assert settings.max_body_bytes == parsed.serving.max_body_bytes
    assert (settings.predictor_uri, settings.drift_uri, settings.outlier_uri) == tuple(
        MODELS[role].uri for role in contract.ROLES
    )


def test_a_baked_image_gets_no_model_uris() -> None:
    env = container_environment(build_deployment(OWNER, spec(), MODELS, "img:1", baked=True))
    assert not set(contract.MODEL_URI.values()) & set(env)
    assert not load_settings(env).uses_registry


def test_one_set_of_defaults() -> None:
    serving_schema = spec_schema()["properties"]["serving"]["properties"]
    crd_defaults = {key: value["default"] for key, value in serving_schema.items()}
    parsed = spec().serving
    service = Settings()
    assert crd_defaults == {
        "serviceName": parsed.service_name,
        "monitoring": parsed.monitoring,
        "logInputs": parsed.log_inputs,
        "driftWindowSize": parsed.drift_window_size,
        "driftWindowMinRows": parsed.drift_window_min_rows,
        "maxRows": parsed.max_rows,
        "maxBodyBytes": parsed.max_body_bytes,
        "maxConcurrency": parsed.max_concurrency,
    }
    assert (
        service.service_name,
        service.monitoring_enabled,
        service.drift.window_size,
        service.max_rows,
        service.max_concurrency,
    ) == (
        parsed.service_name,
        parsed.monitoring,
        parsed.drift_window_size,
        parsed.max_rows,
        parsed.max_concurrency,
    )
    assert "wine" not in contract.DEFAULTS.service_name.lower()
