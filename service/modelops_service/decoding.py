"""Decode and validate a /predict body: a JSON list of records -> a float matrix in signature order."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops_service.errors import BadRequest, InvalidInput, PayloadTooLarge
from modelops_service.features import Feature

# What a value of each feature kind must be, as the error messages of tensor inputs say it.
EXPECTED_IN_TENSORS = {"float": "a finite number", "integer": "an integer", "boolean": "true/false or 0/1"}


@dataclass(frozen=True)
class Batch:
    """Validated input: the records as sent and the same values as a (rows, features) float matrix."""

    records: list[dict[str, Any]]
    matrix: np.ndarray

    def __len__(self) -> int:
        return len(self.records)


def _nonfinite(name: str) -> float:
    # json.loads accepts the non-standard NaN, Infinity and -Infinity tokens: keep them as floats so that
    # check_value rejects them with the record and field they appear in.
    return float(name)


def parse_json(body: bytes) -> Any:
    """Parse the body as JSON (NaN/Infinity tokens become floats that validation then rejects)."""
    if not body.strip():
        raise BadRequest("the request body is empty: expected a JSON list of records")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_nonfinite)
    except UnicodeDecodeError as e:
        raise BadRequest(f"the request body is not UTF-8 text: {e.reason}") from e
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    except ValueError as e:  # e.g. an integer literal longer than Python's 4,300-digit conversion limit
        raise BadRequest(f"the request body is not JSON this service reads: {str(e)[:120]}") from e
    except RecursionError as e:  # thousands of nested [ or {: the parser's stack, not the input's meaning
        raise BadRequest("the request body is nested too deeply: expected a JSON list of flat records") from e


def check_columns(matrix: np.ndarray, features: Sequence[Feature]) -> None:
    """check_value's rule for a whole matrix (tensor inputs of /v2): finite values (NaN only for features
    a record may omit), integral where the feature is an integer or a boolean, 0 or 1 for booleans."""
    for column, feature in enumerate(features):
        values = matrix[:, column]
        missing = np.isnan(values)
        bad = np.isinf(values) | (missing if feature.required else np.zeros_like(missing))
        if feature.kind in ("integer", "boolean"):
            bad |= ~missing & (values != np.round(values))
        if feature.kind == "boolean":
            bad |= ~missing & (values != 0) & (values != 1)
        if bad.any():
            row = int(np.argmax(bad))
            expected = EXPECTED_IN_TENSORS[feature.kind]
            message = f"input {feature.name!r}, row {row}: expected {expected}, got {values[row]!r}"
            raise InvalidInput(message, field=feature.name)


def check_value(value: Any, feature: Feature, where: str) -> float:
    """Check one JSON value against its feature's kind and return it as a float."""
    # bool is a subclass of int in Python: keep true/false out of numeric columns.
    if feature.kind == "boolean":
        if isinstance(value, bool):
            return float(value)
        raise InvalidInput(f"{where}: expected true or false, got {_describe(value)}", field=where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: expected a number, got {_describe(value)}", field=where)
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond the float range (hundreds of digits)
        digits = len(str(abs(value)))
        raise InvalidInput(
            f"{where}: expected a number, got an integer of {digits} digits", field=where
        ) from None
    if feature.kind == "integer":
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInput(f"{where}: expected an integer, got a non-finite number", field=where)
            if not value.is_integer():
                raise InvalidInput(f"{where}: expected an integer, got {value!r}", field=where)
        return number
    if not math.isfinite(number):
        # A literal such as 1e999 parses to inf.
        raise InvalidInput(f"{where}: expected a finite number, got {value!r}", field=where)
    return number


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kind = {str: "a string", bool: "a boolean", list: "a list", dict: "an object"}.get(type(value))
    return kind or f"{type(value).__name__} {value!r}"


def validate_records(data: Any, features: tuple[Feature, ...], max_rows: int) -> Batch:
    """Check a parsed body against the features and build the matrix; errors name the record and field."""
    if not isinstance(data, list):
        raise InvalidInput(f"the body must be a JSON list of records, got {_describe(data)}")
    if not data:
        raise InvalidInput("the list of records is empty: send at least one record")
    if len(data) > max_rows:
        raise PayloadTooLarge(f"too many records: {len(data)} sent, at most {max_rows} accepted per request")
    names = {feature.name for feature in features}
    matrix = np.empty((len(data), len(features)), dtype=np.float64)
    for row, record in enumerate(data):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"record {row} must be a JSON object, got {_describe(record)}", field=f"[{row}]"
            )
        if record.keys() != names:
            _raise_field_mismatch(row, record, features, names)
        for column, feature in enumerate(features):
            where = f"[{row}].{feature.name}"
            value = record.get(feature.name)
            if value is None and not feature.required:
                matrix[row, column] = math.nan
                continue
            matrix[row, column] = check_value(value, feature, where)
    return Batch(records=data, matrix=matrix)


def _raise_field_mismatch(
    row: int, record: dict[str, Any], features: tuple[Feature, ...], names: set[str]
) -> None:
    unknown = sorted(set(record) - names)
    if unknown:
        raise InvalidInput(
            f"record {row}: unknown field {unknown[0]!r} (expected fields: {', '.join(sorted(names))})",
            field=f"[{row}].{unknown[0]}",
        )
    for feature in features:
        if feature.required and feature.name not in record:
            raise InvalidInput(
                f"record {row}: field {feature.name!r} is missing", field=f"[{row}].{feature.name}"
            )


def decode_body(body: bytes, features: tuple[Feature, ...], max_rows: int) -> Batch:
    """Parse and validate a raw /predict body."""
    return validate_records(parse_json(body), features, max_rows)
