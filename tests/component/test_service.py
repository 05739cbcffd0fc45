"""The prediction service under a real `bentoml serve`, with models trained into a real MLflow registry."""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from modelops_drift.logs import parse_line
from modelops_operator.drift_probe import load_error_of
from modelops_service.settings import DEFAULT_SERVICE_NAME
from modelops_support.local_service import LocalService
from modelops_support.waiting import WaitTimeout, wait_for
from tests.fixtures.data import FEATURES, shifted, wine_records
from tests.fixtures.service import start_service

pytestmark = pytest.mark.component


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def post(service: LocalService, payload: Any = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.post(f"{service.url}/predict", content=content, timeout=30)
    return httpx.post(f"{service.url}/predict", json=payload, timeout=30)


def wait_for_log(service: LocalService, pattern: str, timeout: float = 20.0) -> list[str]:
    """Log lines containing `pattern`, polling until at least one shows up."""
    try:
        return wait_for(
            lambda: [line for line in service.log_text().splitlines() if pattern in line],
            timeout,
            0.1,
            f"a log line with {pattern!r}",
        )
    except WaitTimeout as e:
        raise AssertionError(f"{e}:\n{service.log_tail()}") from e


def test_example_request(prediction_service: LocalService, example_records: list[dict], trained_models: dict):
    response = post(prediction_service, example_records)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 2
    for prediction in body["predictions"]:
        assert prediction["class"] in (0, 1)
        assert 0.5 <= prediction["probability"] <= 1.0
    drift = body["monitoring"]["drift"]
    assert drift["threshold"] == pytest.approx(0.05)
    for key in ("p_value", "is_drift", "distance"):
        assert set(drift[key]) == set(FEATURES)
    outliers = body["monitoring"]["outliers"]
    assert len(outliers["is_outlier"]) == len(outliers["instance_score"]) == 2
    assert body["monitoring"]["window"]["size"] == 200
    models = trained_models["models"]
    assert body["model_versions"] == {
        role: f"{models[role]['name']}/{models[role]['version']}"
        for role in ("predictor", "drift", "outlier")
    }
    assert response.headers["x-request-id"] == body["request_id"]


def test_predictions_match_the_registered_model(
    prediction_service: LocalService, service_models: dict[str, str], example_records: list[dict]
) -> None:
    mlflow.set_tracking_uri(service_models["tracking_uri"])
    model = mlflow.sklearn.load_model(service_models["predictor"])
    frame = pd.DataFrame(example_records)[FEATURES]
    body = post(prediction_service, example_records).json()
    assert [p["class"] for p in body["predictions"]] == model.predict(frame).tolist()
    proba = model.predict_proba(frame).max(axis=1)
    np.testing.assert_allclose([p["probability"] for p in body["predictions"]], proba, rtol=1e-9)


def test_monitoring_equals_the_alibi_detectors(
    prediction_service: LocalService, service_models: dict[str, str], wine_data_dir: Path
) -> None:
    """p-values equal alibi-detect's TabularDrift (1e-6); outlier scores equal its IForest."""
    mlflow.set_tracking_uri(service_models["tracking_uri"])
    drift = mlflow.pyfunc.load_model(service_models["drift"]).unwrap_python_model().detector
    outlier = mlflow.pyfunc.load_model(service_models["outlier"]).unwrap_python_model().detector
    for rows, seed in ((2, 0), (40, 1)):
        records = wine_records(wine_data_dir, rows, seed)
        monitoring = post(prediction_service, records).json()["monitoring"]
        frame = pd.DataFrame(records)
        expected = drift.predict(frame)
        for name in FEATURES:
            assert monitoring["drift"]["p_value"][name] == pytest.approx(expected.p_value[name], abs=1e-6)
            assert monitoring["drift"]["distance"][name] == pytest.approx(expected.distance[name], abs=1e-6)
        assert monitoring["drift"]["is_drift"] == expected.is_drift
        expected_outliers = outlier.predict(frame)
        np.testing.assert_allclose(
            monitoring["outliers"]["instance_score"], expected_outliers.instance_score, atol=1e-9
        )
        assert monitoring["outliers"]["is_outlier"] == expected_outliers.is_outlier


def test_absurd_row_is_an_outlier(
    prediction_service: LocalService, example_records: list[dict[str, Any]]
) -> None:
    """chlorides = 50 (the reference tops out below 1) is flagged; the typical example row is not."""
    typical = example_records[0]
    body = post(prediction_service, [typical, {**typical, "chlorides": 50.0}]).json()
    assert body["monitoring"]["outliers"]["is_outlier"] == [False, True]


def latest_window(
    service: LocalService, records: list[dict], done: Callable[[dict], bool], timeout: float = 15.0
) -> dict:
    """The window in the answers to `records`, sent again until `done(window)`: the window test runs in the
    background, so a response carries the latest finished test, which may predate the request's rows."""
    windows: list[dict] = []

    def answered() -> bool:
        windows.append(post(service, records).json()["monitoring"]["window"])
        return done(windows[-1])

    with contextlib.suppress(WaitTimeout):  # the caller asserts on the last window seen
        wait_for(answered, timeout, 0.05, "the window test")
    return windows[-1]


def test_shifted_batch_flags_window_drift(prediction_service: LocalService, wine_data_dir: Path) -> None:
    # Fill the 200-row window with real rows, then with the same kind of rows with more alcohol.
    post(prediction_service, wine_records(wine_data_dir, 200, seed=10)).raise_for_status()
    real = wine_records(wine_data_dir, 1, seed=11)
    before = latest_window(prediction_service, real, lambda w: w["drift"] is not None)
    assert before["rows"] == 200
    assert before["drift"]["p_value"]["alcohol"] > 1e-3

    batch = shifted(wine_records(wine_data_dir, 200, seed=12), "alcohol", 3.0)
    response = post(prediction_service, batch)
    assert response.status_code == 200, response.text
    assert response.json()["monitoring"]["drift"]["is_drift"]["alcohol"] is True
    window = latest_window(prediction_service, batch[:1], lambda w: w["drift"]["is_drift"]["alcohol"])
    assert window["drift"]["is_drift"]["alcohol"] is True
    assert window["drift"]["p_value"]["alcohol"] < 1e-6


GOOD = {name: 1.0 for name in FEATURES} | {"is_red": 1}


@pytest.mark.parametrize(
    ("content", "status", "mentions"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"alcohol": 1}', 422, "JSON list"),
        (b"[]", 422, "empty"),
        (b'[{"alcohol": 1}]', 422, "is missing"),
        (json_bytes([{**GOOD, "colour": 1}]), 422, "unknown field 'colour'"),
        (json_bytes([{**GOOD, "pH": "low"}]), 422, "[0].pH: expected a number"),
        (json_bytes([GOOD, {**GOOD, "is_red": 0.5}]), 422, "[1].is_red"),
        (re.sub(rb"1\.0", b"NaN", json_bytes([GOOD]), count=1), 422, "finite"),
        (
            re.sub(rb"1\.0", b"-Infinity", json_bytes([GOOD]), count=1),
            422,
            "finite",
        ),
        (json_bytes([GOOD] * 501), 413, "too many records: 501"),
        (b"[" + b" " * 200_001 + b"]", 413, "exceeds the limit of 200000 bytes"),
    ],
)
def test_bad_input_gets_4xx_and_the_server_keeps_serving(
    prediction_service: LocalService, example_records: list[dict], content: bytes, status: int, mentions: str
) -> None:
    response = post(prediction_service, content=content)
    assert response.status_code == status, response.text
    assert mentions in response.json()["message"]
    assert post(prediction_service, example_records).status_code == 200


def test_log_lines_satisfy_the_query(prediction_service: LocalService, example_records: list[dict]) -> None:
    body = post(prediction_service, example_records).json()
    lines = wait_for_log(prediction_service, body["request_id"])
    types = {line.split("INFO -")[1].split('"type":"')[1].split('"')[0] for line in lines}
    assert types == {"input_data", "monitoring_metrics", "output_data"}
    # The service logs under its configured name (MODELOPS_SERVICE_NAME; here its default): the query
    # filters on that name, as the proof of concept's query does on WineQualityService.
    queried = [line for line in lines if parse_line(line, DEFAULT_SERVICE_NAME) is not None]
    assert len(queried) == 1
    p_values = parse_line(queried[0], DEFAULT_SERVICE_NAME).p_values
    assert p_values == body["monitoring"]["drift"]["p_value"]
    assert all(isinstance(p, float) and 0 <= p <= 1 for p in p_values.values())
    assert re.match(
        rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}Z {DEFAULT_SERVICE_NAME} INFO - \{{", queried[0]
    )


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_metrics_expose_drift_gauges(prediction_service: LocalService, example_records: list[dict]) -> None:
    # A batch of its own (not the example other tests send): its p-values are this request's only.
    batch = [{**record, "alcohol": record["alcohol"] + 0.37} for record in example_records]
    body = post(prediction_service, batch).json()

    def written() -> str | None:
        # The request path's gauges are written by the service's flush thread, at most a second later.
        text = httpx.get(f"{prediction_service.url}/metrics", timeout=10).text
        for feature in FEATURES:
            value = metric_value(text, "modelops_drift_p_value", scope="request", feature=feature)
            if not math.isclose(value, body["monitoring"]["drift"]["p_value"][feature]):
                return None
        return text

    text = wait_for(written, 10, 0.1, "the request's p-values on /metrics")
    for feature in FEATURES:
        flagged = metric_value(text, "modelops_drift_feature_detected", scope="request", feature=feature)
        assert flagged == float(body["monitoring"]["drift"]["is_drift"][feature])
    assert metric_value(text, "modelops_drift_detected", scope="request") in (0.0, 1.0)
    assert metric_value(text, "modelops_rows_total") >= 2
    assert metric_value(text, "modelops_outliers_total") >= 0
    predict_200 = {"endpoint": "/predict", "http_response_code": "200"}
    assert metric_value(text, "bentoml_service_request_total", **predict_200) >= 1


def test_swagger_documents_predict_with_the_example(
    prediction_service: LocalService, example_records
) -> None:
    spec = httpx.get(f"{prediction_service.url}/docs.json", timeout=10).json()
    operation = spec["paths"]["/predict"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["example"] == example_records
    assert {"200", "400", "413", "422", "503"} <= set(operation["responses"])
    assert "PredictResponse" in spec["components"]["schemas"]
    assert httpx.get(f"{prediction_service.url}/", timeout=10).status_code == 200
    assert httpx.get(f"{prediction_service.url}/livez", timeout=10).status_code == 200
    assert httpx.get(f"{prediction_service.url}/readyz", timeout=10).status_code == 200


def test_monitoring_and_input_logging_switched_off(
    service_models: dict[str, str], example_records: list[dict], tmp_path: Path
) -> None:
    env = {
        "MODELOPS_MONITORING_ENABLED": "false",
        "MODELOPS_LOG_INPUTS": "false",
        "MODELOPS_SERVICE_NAME": "Quiet",
    }
    service = start_service(service_models, tmp_path, env)
    try:
        body = post(service, example_records).json()
        assert body["monitoring"] is None
        assert len(body["predictions"]) == 2
        lines = wait_for_log(service, body["request_id"])
        assert all(" Quiet INFO - " in line for line in lines)
        assert all('"type":"output_data"' in line for line in lines)
    finally:
        service.close()


def test_not_ready_until_models_load(service_models: dict[str, str], tmp_path: Path) -> None:
    broken = {**service_models, "predictor": "models:/no_such_model/1"}
    service = LocalService.for_models(broken, workdir=tmp_path)
    service.start(wait_ready=False)
    try:
        wait_for(lambda: service.probe("/livez") == 200, 120, 0.2, "the service's /livez")
        wait_for_log(service, "model loading failed", timeout=120)
        assert service.probe("/readyz") == 503
        response = httpx.post(f"{service.url}/predict", json=[GOOD], timeout=10)
        assert response.status_code == 503
        assert response.json()["error"] == "ModelLoadError"  # failed, not loading: it retries meanwhile
        assert "no_such_model" in response.json()["message"]
        # The Open Inference Protocol's probes say the same (a probe may use either).
        assert (service.probe("/v2/health/live"), service.probe("/v2/health/ready")) == (200, 503)
        response = httpx.get(f"{service.url}/v2/health/ready", timeout=10)
        assert "no_such_model" in response.json()["error"]
        # ... and the operator reads it so (a canary pod whose models do not load is rolled back).
        why = load_error_of(response.status_code, response.content)
        assert why is not None
        assert "no_such_model" in why
    finally:
        service.close()
