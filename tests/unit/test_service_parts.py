"""Settings, window, model URIs, features from a signature, bentofile: pure parts of the service."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from modelops_service.bake import build_bentofile
from modelops_service.errors import ModelLoadError
from modelops_service.features import Feature, features_from_schema
from modelops_service.model_loader import ModelRef, parse_models_uri
from modelops_service.settings import DEFAULT_SERVICE_NAME, load_settings
from modelops_service.window import SlidingWindow


def test_settings_defaults() -> None:
    settings = load_settings({})
    assert settings.service_name == DEFAULT_SERVICE_NAME == "ModelService"  # no example name as default
    assert settings.monitoring_enabled
    assert settings.log_inputs
    assert (settings.max_rows, settings.max_body_bytes) == (1000, 1_048_576)
    assert (settings.drift.window_size, settings.drift.window_min_rows) == (500, 100)
    assert (settings.drift.window_every, settings.drift.window_min_seconds) == (50, 1.0)
    assert not settings.uses_registry


def test_settings_from_contract_env() -> None:
    settings = load_settings(
        {
            "MODELOPS_SERVICE_NAME": "FraudService",
            "MODELOPS_PREDICTOR_URI": "models:/m/1",
            "MODELOPS_MONITORING_ENABLED": "false",
            "MODELOPS_LOG_INPUTS": "False",
            "MODELOPS_DRIFT_WINDOW_SIZE": "50",
            "MODELOPS_DRIFT_WINDOW_MIN_ROWS": "10",
            "MODELOPS_MAX_ROWS": "7",
            "MODELOPS_DRIFT_WINDOW_MIN_SECONDS": "0.25",
        }
    )
    assert settings.service_name == "FraudService"
    assert settings.predictor_uri == "models:/m/1"
    assert settings.uses_registry
    assert not settings.monitoring_enabled
    assert not settings.log_inputs
    assert (settings.drift.window_size, settings.drift.window_min_rows, settings.max_rows) == (50, 10, 7)
    assert settings.drift.window_min_seconds == 0.25


@pytest.mark.parametrize(
    "env",
    [
        {"MODELOPS_MONITORING_ENABLED": "maybe"},
        {"MODELOPS_MAX_ROWS": "-1"},
        {"MODELOPS_DRIFT_WINDOW_SIZE": "10", "MODELOPS_DRIFT_WINDOW_MIN_ROWS": "20"},
        {"MODELOPS_DRIFT_WINDOW_MIN_SECONDS": "-1"},
        {"MODELOPS_DRIFT_WINDOW_MIN_SECONDS": "nan"},
        {"MODELOPS_DRIFT_WINDOW_MIN_SECONDS": "soon"},
    ],
)
def test_settings_reject_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="MODELOPS_"):
        load_settings(env)


def test_window_keeps_the_latest_rows() -> None:
    window = SlidingWindow(size=4, n_features=1)
    window.add(np.array([[1.0], [2.0], [3.0]]))
    assert len(window) == 3
    window.add(np.array([[4.0], [5.0]]))
    assert sorted(window.rows()[:, 0]) == [2.0, 3.0, 4.0, 5.0]
    window.add(np.arange(10.0).reshape(-1, 1))
    assert sorted(window.rows()[:, 0]) == [6.0, 7.0, 8.0, 9.0]
    assert window.total == 15


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/wine_quality/3", ModelRef("wine_quality", "3")),
        ("models:/wine_quality@production", ModelRef("wine_quality", alias="production")),
    ],
)
def test_parse_models_uri(uri: str, ref: ModelRef) -> None:
    assert parse_models_uri(uri) == ref
    assert ref.uri == uri


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/", "models:/a/b/c"])
def test_parse_models_uri_rejects(uri: str) -> None:
    with pytest.raises(ModelLoadError):
        parse_models_uri(uri)


def test_features_from_signature() -> None:
    # an int64 column makes MLflow warn about missing values; irrelevant here
    frame = pd.DataFrame({"alcohol": [9.5], "is_red": np.array([1], dtype=np.int64), "ok": [True]})
    schema = infer_signature(frame).inputs
    assert features_from_schema(schema) == (
        Feature("alcohol", "float"),
        Feature("is_red", "integer"),
        Feature("ok", "boolean"),
    )


def test_bentofile_adds_models_only_when_baked() -> None:
    template = {"service": "modelops_service.service:ModelService", "python": {"lock_packages": False}}
    assert "models" not in build_bentofile(template, [])
    assert build_bentofile(template, ["modelops-predictor:abc"])["models"] == ["modelops-predictor:abc"]
    assert "models" not in template


def test_plain_estimator_gets_the_matrix_and_same_answers_as_a_frame() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelops_service.predictor import Predictor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "is_red": rng.integers(0, 2, size=200)})
    model = HistGradientBoostingClassifier(max_iter=5).fit(frame, (frame["a"] > 0).astype(int))
    predictions = Predictor(model, ["a", "is_red"], {"is_red": "int64"}).predict(frame.to_numpy(np.float64))
    assert predictions.classes == model.predict(frame).tolist()
    np.testing.assert_allclose(predictions.probabilities, model.predict_proba(frame).max(axis=1))


def test_encoded_response_is_the_documented_document() -> None:
    from modelops_service.drift import DriftReport
    from modelops_service.encoding import encode_response
    from modelops_service.monitoring import Monitoring, WindowState
    from modelops_service.outliers import OutlierReport
    from modelops_service.predictor import Predictions

    drift = DriftReport(0.05, {"a": 0.5}, {"a": 0.1}, {"a": False}, rows=2)
    outliers = OutlierReport(0.3, [False, True], [0.1, 0.4])
    monitoring = Monitoring(drift, WindowState(2, 500, 100, None, False), outliers)
    versions = {"predictor": "m/1", "drift": "d/1", "outlier": "o/1"}
    encoded = encode_response(Predictions([0, 1], [0.9, 0.6]), monitoring, versions, "r1")
    assert json.loads(encoded.body) == {
        "request_id": "r1",
        "predictions": [{"class": 0, "probability": 0.9}, {"class": 1, "probability": 0.6}],
        "monitoring": {
            "drift": {
                "threshold": 0.05,
                "is_drift": {"a": False},
                "p_value": {"a": 0.5},
                "distance": {"a": 0.1},
            },
            "window": {"rows": 2, "size": 500, "min_rows": 100, "drift": None},
            "outliers": {"threshold": 0.3, "is_outlier": [False, True], "instance_score": [0.1, 0.4]},
        },
        "model_versions": versions,
    }
    quiet = encode_response(Predictions([0], [None]), None, versions, "r2")
    assert json.loads(quiet.body)["monitoring"] is None


@pytest.mark.parametrize("window_tested", [False, True])
def test_monitoring_json_is_the_text_of_monitoring_as_dict(window_tested: bool) -> None:
    """The monitoring object is assembled from drift reports encoded once; the text is exactly what
    encoding the whole dict gives (order, separators, floats), with or without a window report."""
    from modelops_service.drift import DriftReport
    from modelops_service.jsontext import to_json
    from modelops_service.monitoring import Monitoring, WindowState
    from modelops_service.outliers import OutlierReport

    names = ["fixed acidity", "pH", 'quote"d']

    def report(p: list[float], d: list[float], flags: list[bool], rows: int) -> DriftReport:
        def by_name(values: list) -> dict:
            return dict(zip(names, values, strict=True))

        return DriftReport(0.05, by_name(p), by_name(d), by_name(flags), rows=rows)

    drift = report([0.5, 1e-7, 1.0], [0.1, 0.9, 0.0], [False, True, False], 2)
    window = report([0.01, 0.2, 0.3], [0.3, 0.1, 1 / 3], [True, False, False], 500)
    state = WindowState(500, 500, 100, window if window_tested else None, 480)
    monitoring = Monitoring(drift, state, OutlierReport(0.3, [False, True], [0.1, 0.4]))
    assert monitoring.json() == to_json(monitoring.as_dict())
    assert monitoring.json() == monitoring.json()  # the cached text stays the same


def test_endpoints_get_the_service_instance_without_a_thread_hop() -> None:
    """BentoML hands class-view endpoints their `self` through a synchronous dependency, which FastAPI
    runs in a thread pool on every request; the service overrides it with a coroutine."""
    import inspect

    import bentoml
    from _bentoml_sdk._internals import make_fastapi_class_views

    from modelops_service.service import app

    assert "Depends(get_current_service)" in inspect.getsource(make_fastapi_class_views)
    override = app.dependency_overrides[bentoml.get_current_service]
    assert inspect.iscoroutinefunction(override)
