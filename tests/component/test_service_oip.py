"""Open Inference Protocol V2 on the real `bentoml serve`, spoken by a client nobody here wrote
(tritonclient[http]) and by plain HTTP for the shapes that client does not send."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from modelops_support.local_service import LocalService
from tests.fixtures.data import FEATURES, shifted, wine_records

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def served(prediction_service: LocalService) -> tuple[str, str]:
    """(name, version) of the predictor, as /predict reports it."""
    body = httpx.post(f"{prediction_service.url}/predict", json=_records(), timeout=30).json()
    name, version = body["model_versions"]["predictor"].rsplit("/", 1)
    return name, version


def _records() -> list[dict[str, Any]]:
    from modelops_service.schema import example_request

    return example_request()


@pytest.fixture(scope="module")
def client(prediction_service: LocalService) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(
        url=prediction_service.url.removeprefix("http://"), network_timeout=30
    )


def feature_inputs(records: list[dict[str, Any]], binary: bool) -> list[triton.InferInput]:
    """One 1-D input per feature, typed as the model's metadata declares."""
    inputs = []
    for name in FEATURES:
        integer = all(isinstance(r[name], int) for r in records)
        values = np.array([r[name] for r in records], dtype=np.int64 if integer else np.float64)
        tensor = triton.InferInput(name, list(values.shape), "INT64" if integer else "FP64")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def predict(service: LocalService, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx.post(f"{service.url}/predict", json=records, timeout=30)
    response.raise_for_status()
    return response.json()


def test_server_and_model_metadata(client: triton.InferenceServerClient, served: tuple[str, str]) -> None:
    name, version = served
    assert client.is_server_live()
    assert client.is_server_ready()
    server = client.get_server_metadata()
    assert server["name"] == "modelops"
    assert {"modelops_monitoring", "binary_tensor_data"} <= set(server["extensions"])
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, version)
    assert not client.is_model_ready(name, "999")
    metadata = client.get_model_metadata(name, version)
    assert metadata["name"] == name
    assert metadata["versions"] == [version]
    inputs = {i["name"]: i for i in metadata["inputs"]}
    assert list(inputs) == FEATURES  # the signature's order
    assert inputs["alcohol"] == {"name": "alcohol", "datatype": "FP64", "shape": [-1]}
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "class": "INT64",
        "probability": "FP64",
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_predict(
    client: triton.InferenceServerClient,
    prediction_service: LocalService,
    served: tuple[str, str],
    binary: bool,
) -> None:
    """Named 1-D inputs: the classes and probabilities /predict gives for the same records; drift and
    outliers in the parameters."""
    name, version = served
    records = _records()
    expected = predict(prediction_service, records)
    outputs = (
        None
        if binary
        else [triton.InferRequestedOutput(n, binary_data=False) for n in ("class", "probability")]
    )
    result = client.infer(
        name, feature_inputs(records, binary), model_version=version, outputs=outputs, request_id="r-1"
    )
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (name, version, "r-1")
    assert result.as_numpy("class").tolist() == [p["class"] for p in expected["predictions"]]
    np.testing.assert_allclose(
        result.as_numpy("probability"), [p["probability"] for p in expected["predictions"]]
    )
    parameters = response["parameters"]
    monitoring = json.loads(parameters["monitoring"])
    assert monitoring["drift"]["p_value"] == pytest.approx(expected["monitoring"]["drift"]["p_value"])
    assert monitoring["outliers"]["is_outlier"] == expected["monitoring"]["outliers"]["is_outlier"]
    assert parameters["outliers"] == sum(expected["monitoring"]["outliers"]["is_outlier"])
    assert parameters["drift_detected"] is any(expected["monitoring"]["drift"]["is_drift"].values())


def test_one_2d_input_in_signature_order(
    client: triton.InferenceServerClient,
    prediction_service: LocalService,
    served: tuple[str, str],
    wine_data_dir,
) -> None:
    records = shifted(wine_records(wine_data_dir, 40, seed=31), "alcohol", 3.0)
    matrix = np.array([[float(r[f]) for f in FEATURES] for r in records])
    tensor = triton.InferInput("input-0", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix)
    result = client.infer(served[0], [tensor])
    expected = predict(prediction_service, records)
    assert result.as_numpy("class").tolist() == [p["class"] for p in expected["predictions"]]
    parameters = result.get_response()["parameters"]
    assert parameters["drift_detected"] is True
    assert "alcohol" in parameters["drifted_features"].split(",")


def test_wrong_model_or_version_is_404_json(
    client: triton.InferenceServerClient, prediction_service: LocalService, served: tuple[str, str]
) -> None:
    name = served[0]
    with pytest.raises(InferenceServerException) as error:
        client.infer(name, feature_inputs(_records(), True), model_version="999")
    assert error.value.status() == "404"
    assert "no version '999'" in error.value.message()
    response = httpx.get(f"{prediction_service.url}/v2/models/other_model", timeout=10)
    assert response.status_code == 404
    assert "unknown model 'other_model'" in response.json()["error"]


@pytest.mark.parametrize(
    ("document", "status", "mentions"),
    [
        ({"inputs": []}, 422, "non-empty list"),
        (
            {"inputs": [{"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [9.5]}]},
            422,
            "is missing",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            422,
            "12 columns",
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 12], "datatype": "FP64", "data": [1.0] * 23}]},
            422,
            "23 values",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 12], "datatype": "BYTES", "data": ["a"] * 12}]},
            422,
            "numeric",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 12], "datatype": "FP64", "data": ["1"] * 12}]},
            422,
            "numbers",
        ),
        (
            {"inputs": [{"name": "x", "shape": [600, 12], "datatype": "FP64", "data": [1.0] * 7200}]},
            413,
            "too many",
        ),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 12], "datatype": "FP64", "data": [1.0] * 12}],
                "outputs": [{"name": "y"}],
            },
            422,
            "unknown output",
        ),
        ([1, 2], 422, "JSON object"),
    ],
)
def test_bad_infer_requests_are_4xx_json(
    prediction_service: LocalService, served: tuple[str, str], document: Any, status: int, mentions: str
) -> None:
    response = httpx.post(f"{prediction_service.url}/v2/models/{served[0]}/infer", json=document, timeout=30)
    assert response.status_code == status, response.text
    assert mentions in response.json()["error"]


def test_a_bad_value_is_named(prediction_service: LocalService, served: tuple[str, str]) -> None:
    row = [1.0] * 12
    row[FEATURES.index("is_red")] = 0.5
    document = {"inputs": [{"name": "x", "shape": [1, 12], "datatype": "FP64", "data": row}]}
    response = httpx.post(f"{prediction_service.url}/v2/models/{served[0]}/infer", json=document, timeout=30)
    assert response.status_code == 422
    assert response.json()["field"] == "is_red"


def test_health_paths_answer_like_readyz(prediction_service: LocalService) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/readyz", "/livez"):
        assert httpx.get(f"{prediction_service.url}{path}", timeout=10).status_code == 200, path
