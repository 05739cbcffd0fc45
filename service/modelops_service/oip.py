"""Open Inference Protocol (V2, REST): decode an infer request into a Batch, encode the response and the
metadata. Pure functions; the routes are in service.py. docs/service.md shows the endpoints.

Inputs: one named 1-D tensor per feature (shape [n] or [n, 1]), or one 2-D tensor [n, features] in
signature order, as JSON data (flat row-major or nested) or as binary data after the JSON header (the
binary tensor extension, tritonclient's default). Outputs: `class` and `probability`, as JSON data or as
binary data when asked. Drift and outliers go in the response `parameters` (the modelops_monitoring
extension): flat summaries plus `monitoring`, the /predict response's monitoring object as JSON text,
since the protocol's parameter values are strings, numbers or booleans.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_service.decoding import Batch, check_columns, parse_json
from modelops_service.errors import BadRequest, InvalidInput, NotFound, PayloadTooLarge
from modelops_service.events import acceptable_request_id
from modelops_service.features import Feature

if TYPE_CHECKING:  # only for annotations: `bentoml serve` imports this module in its own process too,
    # which needs neither scipy (the drift tests) nor pandas (the predictor)
    from modelops_service.monitoring import Monitoring
    from modelops_service.predictor import Predictions

EXTENSIONS = ("binary_tensor_data", "modelops_monitoring")
HEADER_LENGTH = "inference-header-content-length"  # binary tensor extension: bytes of JSON before the data
CLASS, PROBABILITY = "class", "probability"

# Tensor datatypes -> numpy dtype of their binary form (little-endian, as the protocol specifies).
NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
_DATATYPE_BY_KIND = {"float": "FP64", "integer": "INT64", "boolean": "BOOL"}


@dataclass(frozen=True)
class ModelId:
    """The served predictor as the protocol names it: the MLflow registered name and version."""

    name: str
    version: str

    @classmethod
    def from_label(cls, label: str) -> ModelId:
        """'<name>/<version>' (the service's model_versions) -> ModelId; a bare label is its own name."""
        name, _, version = label.rpartition("/")
        return cls(name, version) if name else cls(label, "")

    def check(self, name: str, version: str | None) -> None:
        """NotFound unless the path names this model (and this version, when it names one)."""
        if name != self.name:
            raise NotFound(f"unknown model {name!r}: this server serves {self.name!r}")
        if version is not None and version != self.version:
            raise NotFound(
                f"model {name!r} has no version {version!r} on this server: it serves version "
                f"{self.version!r}"
            )


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "modelops", "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(
    model: ModelId, features: Sequence[Feature], classes: Sequence[Any], has_probability: bool
) -> dict[str, Any]:
    """Inputs from the signature (one 1-D tensor per feature), outputs class and probability."""
    outputs = [{"name": CLASS, "datatype": datatype_of(classes), "shape": [-1]}]
    if has_probability:
        outputs.append({"name": PROBABILITY, "datatype": "FP64", "shape": [-1]})
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "mlflow",
        "inputs": [{"name": f.name, "datatype": _DATATYPE_BY_KIND[f.kind], "shape": [-1]} for f in features],
        "outputs": outputs,
    }


def datatype_of(values: Iterable[Any]) -> str:
    """The tensor datatype that holds these Python values (BYTES for strings or a mix)."""
    kinds = {type(v) for v in values}
    if kinds and kinds <= {bool}:
        return "BOOL"
    if kinds and kinds <= {int}:
        return "INT64"
    if kinds and kinds <= {int, float}:
        return "FP64"
    return "BYTES"


# ---------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class InferRequest:
    """A decoded infer request: the validated rows, the id it carried and how the outputs are wanted."""

    batch: Batch
    request_id: str | None
    outputs: tuple[str, ...] | None  # None: every output
    binary_outputs: frozenset[str]


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail (empty without the binary extension's header)."""
    if header_length is None:
        return body, b""
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
    if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length!r} is not a byte count within the body "
            f"({len(body)} bytes)"
        )
    length = int(header_length)
    return body[:length], body[length:]


def decode_infer_request(
    body: bytes, header_length: str | None, features: Sequence[Feature], max_rows: int
) -> InferRequest:
    """Parse and validate an infer request into rows in signature order; errors name the input."""
    header, binary = split_body(body, header_length)
    document = parse_json(header)
    if not isinstance(document, dict):
        raise InvalidInput("the infer request must be a JSON object with an 'inputs' list")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise InvalidInput("'inputs' must be a non-empty list of tensors", field="inputs")
    tensors = _read_tensors(inputs, binary)
    matrix = _matrix(tensors, features, max_rows)
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string", field="id")
    if request_id is not None and not acceptable_request_id(request_id):
        request_id = None  # replaced by the service's own id, never echoed (it reaches a header and the log)
    outputs, binary_outputs = _requested_outputs(document)
    return InferRequest(_batch(matrix, features), request_id or None, outputs, binary_outputs)


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    values: np.ndarray  # flat, float64


def _read_tensors(inputs: list[dict[str, Any]], binary: bytes) -> list[_Tensor]:
    tensors, offset = [], 0
    for index, spec in enumerate(inputs):
        name = spec.get("name")
        where = f"inputs[{index}]"
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}: 'name' must be a non-empty string", field=where)
        where = f"input {name!r}"
        shape = spec.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InvalidInput(f"{where}: 'shape' must be a list of non-negative integers", field=name)
        datatype = spec.get("datatype")
        if not isinstance(datatype, str) or datatype not in NUMPY_DTYPES:
            raise InvalidInput(
                f"{where}: datatype {datatype!r} is not a numeric tensor type ({', '.join(NUMPY_DTYPES)})",
                field=name,
            )
        size = math.prod(shape)
        parameters = spec.get("parameters") or {}
        binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if binary_size is not None:
            values, offset = _binary_values(where, name, datatype, size, binary_size, binary, offset)
        else:
            if "data" not in spec:
                raise InvalidInput(f"{where}: no 'data' and no binary_data_size", field=name)
            values = _json_values(where, name, datatype, spec["data"], size, len(shape))
        tensors.append(_Tensor(name, tuple(shape), values))
    if offset != len(binary):
        raise BadRequest(f"the binary data has {len(binary)} bytes, the inputs declare {offset}")
    return tensors


def _binary_values(
    where: str, name: str, datatype: str, size: int, binary_size: Any, binary: bytes, offset: int
) -> tuple[np.ndarray, int]:
    dtype = np.dtype(NUMPY_DTYPES[datatype])
    if (
        not isinstance(binary_size, int)
        or isinstance(binary_size, bool)
        or binary_size != size * dtype.itemsize
    ):
        raise InvalidInput(
            f"{where}: binary_data_size {binary_size!r} does not match shape and datatype "
            f"({size} x {dtype.itemsize} bytes)",
            field=name,
        )
    if offset + binary_size > len(binary):
        raise BadRequest(f"{where}: the body ends before its {binary_size} bytes of binary data")
    values = np.frombuffer(binary, dtype=dtype, count=size, offset=offset).astype(np.float64)
    return values, offset + binary_size


def _json_values(where: str, name: str, datatype: str, data: Any, size: int, depth: int) -> np.ndarray:
    flat: list[Any] = []
    _flatten(data, depth, flat, where, name)
    if len(flat) != size:
        raise InvalidInput(f"{where}: {len(flat)} values for shape of {size} elements", field=name)
    boolean = datatype == "BOOL"
    for value in flat:
        if boolean:
            if not isinstance(value, bool):
                raise InvalidInput(f"{where}: BOOL data must be true or false, got {value!r}", field=name)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"{where}: {datatype} data must be numbers, got {str(value)[:40]!r}", field=name
            )
    try:
        return np.array(flat, dtype=np.float64)
    except OverflowError:  # an integer literal beyond the float range (hundreds of digits)
        raise InvalidInput(f"{where}: {datatype} data must be within the float range", field=name) from None


def _flatten(data: Any, depth: int, out: list[Any], where: str, name: str) -> None:
    """Row-major values of flat or nested JSON data, at most `depth` lists deep."""
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: 'data' must be a list", field=name)
    for item in data:
        if isinstance(item, list):
            if depth <= 1:
                raise InvalidInput(f"{where}: 'data' is nested deeper than its shape", field=name)
            _flatten(item, depth - 1, out, where, name)
        else:
            out.append(item)


def _matrix(tensors: list[_Tensor], features: Sequence[Feature], max_rows: int) -> np.ndarray:
    names = [f.name for f in features]
    by_name = {t.name: t for t in tensors}
    if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].name not in names:
        tensor = tensors[0]
        rows, columns = tensor.shape
        if columns != len(names):
            raise InvalidInput(
                f"input {tensor.name!r}: a 2-D input needs {len(names)} columns (the features in "
                f"signature order: {', '.join(names)}), got {columns}",
                field=tensor.name,
            )
        _check_rows(rows, max_rows)
        matrix = tensor.values.reshape(rows, columns)
    else:
        if len(by_name) != len(tensors):
            raise InvalidInput("two inputs have the same name", field="inputs")
        unknown = sorted(set(by_name) - set(names))
        if unknown:
            raise InvalidInput(
                f"unknown input {unknown[0]!r}: send one 1-D input per feature ({', '.join(names)}) "
                "or one 2-D input with the features in that order",
                field=unknown[0],
            )
        missing = [f.name for f in features if f.required and f.name not in by_name]
        if missing:
            raise InvalidInput(f"input {missing[0]!r} is missing", field=missing[0])
        rows_of = {}
        for tensor in tensors:
            if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
                raise InvalidInput(
                    f"input {tensor.name!r}: a feature input has shape [n] or [n, 1], "
                    f"got {list(tensor.shape)}",
                    field=tensor.name,
                )
            rows_of[tensor.name] = tensor.shape[0]
        if len(set(rows_of.values())) > 1:
            raise InvalidInput(f"the inputs have different row counts: {rows_of}", field="inputs")
        rows = next(iter(rows_of.values()))
        _check_rows(rows, max_rows)
        matrix = np.full((rows, len(names)), np.nan)
        for column, name in enumerate(names):
            if name in by_name:
                matrix[:, column] = by_name[name].values
    check_columns(matrix, features)
    return matrix


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise InvalidInput("the inputs have no rows: send at least one", field="inputs")
    if rows > max_rows:
        raise PayloadTooLarge(f"too many rows: {rows} sent, at most {max_rows} accepted per request")


def _batch(matrix: np.ndarray, features: Sequence[Feature]) -> Batch:
    """The rows as records too (the input_data log events carry them as /predict's do)."""
    records = []
    for row in matrix.tolist():
        record: dict[str, Any] = {}
        for feature, value in zip(features, row, strict=True):
            if math.isnan(value):
                record[feature.name] = None
            elif feature.kind == "boolean":
                record[feature.name] = bool(value)
            elif feature.kind == "integer":
                record[feature.name] = int(value)
            else:
                record[feature.name] = value
        records.append(record)
    return Batch(records=records, matrix=matrix)


def _requested_outputs(document: dict[str, Any]) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    parameters = document.get("parameters") or {}
    binary_all = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    requested = document.get("outputs")
    if requested is None:
        return None, frozenset((CLASS, PROBABILITY) if binary_all else ())
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise InvalidInput("'outputs' must be a list of {name, parameters}", field="outputs")
    names, binary = [], set()
    for output in requested:
        name = output.get("name")
        if name not in (CLASS, PROBABILITY):
            raise InvalidInput(f"unknown output {name!r}: the outputs are {CLASS!r} and {PROBABILITY!r}")
        names.append(name)
        flags = output.get("parameters") or {}
        if binary_all or (isinstance(flags, dict) and flags.get("binary_data") is True):
            binary.add(name)
    return tuple(names), frozenset(binary)


# --------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class EncodedInferResponse:
    body: bytes
    header_length: int | None  # set when binary outputs follow the JSON header


def monitoring_parameters(monitoring: Monitoring | None, monitoring_json: str) -> dict[str, Any]:
    """Drift and outliers as protocol parameters: summaries plus the full object as JSON text."""
    if monitoring is None:
        return {}
    parameters: dict[str, Any] = {
        "drift_detected": monitoring.drift.any_drift,
        "drifted_features": ",".join(f for f, d in monitoring.drift.is_drift.items() if d),
        "outliers": sum(monitoring.outliers.is_outlier),
        "monitoring": monitoring_json,
    }
    window = monitoring.window.drift
    if window is not None:
        parameters["window_drift_detected"] = window.any_drift
        parameters["window_drifted_features"] = ",".join(f for f, d in window.is_drift.items() if d)
    return parameters


def encode_infer_response(
    model: ModelId,
    request: InferRequest,
    request_id: str,
    predictions: Predictions,
    monitoring: Monitoring | None,
    monitoring_json: str,
) -> EncodedInferResponse:
    """The response document (and binary tail when binary outputs were asked for)."""
    rows = len(predictions.classes)
    columns: dict[str, tuple[str, list[Any]]] = {
        CLASS: (datatype_of(predictions.classes), predictions.classes)
    }
    if all(p is not None for p in predictions.probabilities):
        columns[PROBABILITY] = ("FP64", list(predictions.probabilities))
    wanted = request.outputs if request.outputs is not None else tuple(columns)
    outputs, tail = [], []
    for name in wanted:
        if name not in columns:
            raise InvalidInput(f"output {name!r} is not available: the model has no predict_proba")
        datatype, values = columns[name]
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [rows]}
        if name in request.binary_outputs:
            raw = _binary_output(datatype, values)
            output["parameters"] = {"binary_data_size": len(raw)}
            tail.append(raw)
        else:
            output["data"] = [str(v) for v in values] if datatype == "BYTES" else values
        outputs.append(output)
    document = {
        "model_name": model.name,
        "model_version": model.version,
        "id": request_id,
        "parameters": monitoring_parameters(monitoring, monitoring_json),
        "outputs": outputs,
    }
    header = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    if not tail:
        return EncodedInferResponse(header, None)
    return EncodedInferResponse(header + b"".join(tail), len(header))


def _binary_output(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":  # each element: 4-byte little-endian length, then the UTF-8 bytes
        parts = []
        for value in values:
            encoded = str(value).encode()
            parts += [len(encoded).to_bytes(4, "little"), encoded]
        return b"".join(parts)
    return np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tobytes()
