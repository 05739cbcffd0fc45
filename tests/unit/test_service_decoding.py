"""Decode/validate hook: each bad input is a ServiceError with its status and a message naming the field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelops_service.decoding import decode_body
from modelops_service.errors import BadRequest, InvalidInput, PayloadTooLarge, ServiceError, error_body
from modelops_service.features import Feature

FEATURES = (Feature("alcohol", "float"), Feature("pH", "float"), Feature("is_red", "integer"))
GOOD = {"alcohol": 10.5, "pH": 3, "is_red": 1}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_decodes_records_in_signature_order() -> None:
    batch = decode_body(body([{"is_red": 0, "pH": 3.2, "alcohol": 9}, GOOD]), FEATURES, max_rows=10)
    np.testing.assert_array_equal(batch.matrix, [[9.0, 3.2, 0.0], [10.5, 3.0, 1.0]])
    assert len(batch) == 2


def test_optional_feature_may_be_missing() -> None:
    features = (*FEATURES[:2], Feature("is_red", "integer", required=False))
    batch = decode_body(body([{"alcohol": 1.0, "pH": 2.0}]), features, max_rows=10)
    assert np.isnan(batch.matrix[0, 2])


@pytest.mark.parametrize(
    ("raw", "error", "status", "mentions"),
    [
        (b"not json", BadRequest, 400, "not valid JSON"),
        (b"", BadRequest, 400, "empty"),
        (b"\xff\xfe", BadRequest, 400, "UTF-8"),
        (body({"alcohol": 1}), InvalidInput, 422, "JSON list"),
        (body([]), InvalidInput, 422, "empty"),
        (body([GOOD, 5]), InvalidInput, 422, "record 1"),
        (body([{"alcohol": 1.0, "pH": 3.0}]), InvalidInput, 422, "'is_red' is missing"),
        (body([{**GOOD, "colour": "red"}]), InvalidInput, 422, "unknown field 'colour'"),
        (
            body([{**GOOD, "alcohol": "high"}]),
            InvalidInput,
            422,
            "[0].alcohol: expected a number, got a string",
        ),
        (body([{**GOOD, "alcohol": None}]), InvalidInput, 422, "[0].alcohol: expected a number, got null"),
        (
            body([{**GOOD, "alcohol": True}]),
            InvalidInput,
            422,
            "[0].alcohol: expected a number, got a boolean",
        ),
        (body([{**GOOD, "is_red": 0.5}]), InvalidInput, 422, "[0].is_red: expected an integer"),
        (b'[{"alcohol": NaN, "pH": 3.0, "is_red": 1}]', InvalidInput, 422, "[0].alcohol: expected a finite"),
        (b'[{"alcohol": 1.0, "pH": -Infinity, "is_red": 1}]', InvalidInput, 422, "[0].pH: expected a finite"),
        (
            b'[{"alcohol": 1e999, "pH": 3.0, "is_red": 1}]',
            InvalidInput,
            422,
            "[0].alcohol: expected a finite",
        ),
        (body([GOOD] * 4), PayloadTooLarge, 413, "too many records: 4"),
    ],
)
def test_bad_input(raw: bytes, error: type[ServiceError], status: int, mentions: str) -> None:
    with pytest.raises(error) as caught:
        decode_body(raw, FEATURES, max_rows=3)
    assert caught.value.status_code == status
    assert mentions in caught.value.message


def test_error_body_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_body(body([GOOD, {**GOOD, "pH": "acid"}]), FEATURES, max_rows=3)
    assert error_body(caught.value) == {
        "error": "InvalidInput",
        "message": "[1].pH: expected a number, got a string",
        "field": "[1].pH",
    }
