"""Open Inference Protocol decoding and encoding: pure functions, no server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelops_service import oip
from modelops_service.errors import BadRequest, InvalidInput
from modelops_service.features import Feature
from modelops_service.predictor import Predictions

FEATURES = (Feature("a", "float"), Feature("n", "integer"), Feature("flag", "boolean"))


def decode(document: dict, binary: bytes = b"", max_rows: int = 10) -> oip.InferRequest:
    header = json.dumps(document).encode()
    length = str(len(header)) if binary else None
    return oip.decode_infer_request(header + binary, length, FEATURES, max_rows)


def test_named_inputs_in_any_order_and_shapes_n_or_n1() -> None:
    request = decode(
        {
            "id": "abc",
            "inputs": [
                {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
                {"name": "n", "shape": [2, 1], "datatype": "INT64", "data": [[3], [4]]},
                {"name": "a", "shape": [2], "datatype": "FP32", "data": [0.5, 1.5]},
            ],
        }
    )
    np.testing.assert_array_equal(request.batch.matrix, [[0.5, 3, 1], [1.5, 4, 0]])
    assert request.batch.records == [{"a": 0.5, "n": 3, "flag": True}, {"a": 1.5, "n": 4, "flag": False}]
    assert (request.request_id, request.outputs, request.binary_outputs) == ("abc", None, frozenset())


def test_one_2d_input_nested_or_flat_and_binary_give_the_same_rows() -> None:
    rows = [[0.5, 3, 1], [1.5, 4, 0]]
    nested = decode({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": rows}]})
    flat = decode(
        {
            "inputs": [
                {"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [v for row in rows for v in row]}
            ]
        }
    )
    raw = np.array(rows, dtype="<f4").tobytes()
    binary = decode(
        {
            "inputs": [
                {"name": "x", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": 24}}
            ]
        },
        raw,
    )
    for request in (nested, flat, binary):
        np.testing.assert_array_equal(request.batch.matrix, rows)


@pytest.mark.parametrize(
    ("tensor", "error", "mentions"),
    [
        ({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[[1, 2, 3]]]}, InvalidInput, "deeper"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2.5, 1]}, InvalidInput, "integer"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 2]}, InvalidInput, "0/1"),
        (
            {"name": "x", "shape": [1, 3], "datatype": "BOOL", "data": [1, 2, 1]},
            InvalidInput,
            "true or false",
        ),
        ({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [True, 2, 1]}, InvalidInput, "numbers"),
        ({"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1e999, 2, 1]}, InvalidInput, "finite"),
        ({"name": "x", "shape": [11, 3], "datatype": "FP64", "data": [1] * 33}, Exception, "too many"),
        ({"name": "x", "shape": [0, 3], "datatype": "FP64", "data": []}, InvalidInput, "no rows"),
        ({"name": "x", "shape": [1, 3], "datatype": ["FP64"], "data": [1, 2, 1]}, InvalidInput, "datatype"),
        (
            {"name": "x", "shape": [1, -3], "datatype": "FP64", "data": [1, 2, 1]},
            InvalidInput,
            "non-negative",
        ),
    ],
)
def test_bad_tensors_are_named(tensor: dict, error: type[Exception], mentions: str) -> None:
    with pytest.raises(error, match=mentions):
        decode({"inputs": [tensor]})


def test_binary_sizes_must_add_up() -> None:
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP64", "parameters": {"binary_data_size": 24}}
    with pytest.raises(BadRequest, match="ends before"):
        decode({"inputs": [tensor]}, b"\0" * 16)
    with pytest.raises(BadRequest, match="declare 24"):
        decode({"inputs": [tensor]}, b"\0" * 32)
    with pytest.raises(BadRequest, match="not a byte count"):
        oip.decode_infer_request(b"{}", "-1", FEATURES, 10)


def test_optional_feature_may_be_left_out_required_may_not() -> None:
    features = (Feature("a", "float"), Feature("b", "float", required=False))
    request = oip.decode_infer_request(
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [2.0]}]}', None, features, 10
    )
    assert request.batch.records == [{"a": 2.0, "b": None}]
    with pytest.raises(InvalidInput, match="'a' is missing"):
        oip.decode_infer_request(
            b'{"inputs": [{"name": "b", "shape": [1], "datatype": "FP64", "data": [2.0]}]}',
            None,
            features,
            10,
        )


def test_response_json_and_binary_outputs() -> None:
    request = decode(
        {
            "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [0, 1, 0, 1, 2, 1]}],
            "outputs": [{"name": "probability", "parameters": {"binary_data": True}}, {"name": "class"}],
        }
    )
    predictions = Predictions(classes=[0, 1], probabilities=[0.75, 0.5])
    encoded = oip.encode_infer_response(oip.ModelId("m", "3"), request, "r", predictions, None, "null")
    assert encoded.header_length is not None
    header = json.loads(encoded.body[: encoded.header_length])
    assert header["outputs"] == [
        {"name": "probability", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}},
        {"name": "class", "datatype": "INT64", "shape": [2], "data": [0, 1]},
    ]
    assert np.frombuffer(encoded.body[encoded.header_length :], "<f8").tolist() == [0.75, 0.5]
    assert (header["model_name"], header["model_version"], header["id"]) == ("m", "3", "r")


def test_string_classes_are_bytes_and_predict_only_models_have_no_probability() -> None:
    request = decode({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0, 1, 0]}]})
    encoded = oip.encode_infer_response(
        oip.ModelId("m", "1"), request, "r", Predictions(["good"], [None]), None, "null"
    )
    assert json.loads(encoded.body)["outputs"] == [
        {"name": "class", "datatype": "BYTES", "shape": [1], "data": ["good"]}
    ]


def test_model_id_checks_name_and_version() -> None:
    model = oip.ModelId.from_label("wine_quality/7")
    model.check("wine_quality", None)
    model.check("wine_quality", "7")
    with pytest.raises(oip.NotFound, match="no version '8'"):
        model.check("wine_quality", "8")
    with pytest.raises(oip.NotFound, match="unknown model"):
        model.check("other", None)
