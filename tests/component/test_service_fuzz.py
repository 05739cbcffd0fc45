"""The service's error contract holds for every input: a fuzz of /predict and /v2 infer on the real
`bentoml serve`.

Fixed seed, bounded count (about 450 requests on /predict, 320 on /v2 infer): random JSON structures,
mutated bytes of a valid body, deep nesting, records with wrong or missing fields, wrong content types,
and on /v2 broken tensors and binary data whose declared sizes lie. Every answer is 2xx or 4xx (never
5xx), every error has a JSON body (`error` and `message`; on /v2 the protocol's `error`), and the server
keeps serving.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelops_drift.logs import parse_line
from modelops_service.settings import DEFAULT_SERVICE_NAME
from modelops_support.local_service import LocalService
from modelops_support.waiting import wait_for

pytestmark = pytest.mark.component

SEED = 20261128


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.choice(
        ["int", "float", "str", "bool", "null", "list", "dict"] if depth < 5 else ["int", "str"]
    )
    if kind == "int":
        return rng.randint(-(10**12), 10**12)
    if kind == "float":
        return rng.choice([rng.uniform(-1e6, 1e6), 1e308, -0.0, 5e-324])
    if kind == "str":
        return "".join(rng.choice('abc\u00e9\u4e2d\n"\\{}[]') for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_value(rng, 5) if rng.random() < 0.3 else "alcohol": random_value(rng, depth + 1)}


def mutated(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        action = rng.random()
        if action < 0.4:
            data[at] = rng.randrange(256)
        elif action < 0.7:
            del data[at]
        else:
            data.insert(at, rng.randrange(256))
    return bytes(data)


def wrong_record(rng: random.Random, record: dict[str, Any]) -> list[dict[str, Any]]:
    changed = dict(record)
    field = rng.choice(sorted(changed))
    action = rng.random()
    if action < 0.3:
        del changed[field]
    elif action < 0.6:
        changed[field] = random_value(rng, 4)
    else:
        changed[f"extra_{rng.randint(0, 99)}"] = random_value(rng, 4)
    return [changed]


def cases(example: list[dict[str, Any]]) -> Iterator[tuple[str, bytes, str]]:
    """(what, body, content type) for every request of the fuzz."""
    rng = random.Random(SEED)
    valid = json.dumps(example).encode()
    for _ in range(150):
        yield "random structure", json.dumps(random_value(rng, 0)).encode(), "application/json"
    for _ in range(150):
        yield "mutated bytes", mutated(rng, valid), "application/json"
    for _ in range(100):
        yield "wrong record", json.dumps(wrong_record(rng, rng.choice(example))).encode(), "application/json"
    for depth in (100, 1_000, 3_000, 10_000, 100_000):
        yield f"{depth} nested lists", b"[" * depth + b"]" * depth, "application/json"
        yield f"{depth} nested objects", b'{"a":' * depth + b"1" + b"}" * depth, "application/json"
        yield f"{depth} unclosed", b"[" * depth, "application/json"
    for content_type in (
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "",
        "application/json; charset=latin-1",
    ):
        yield f"content type {content_type!r}", valid, content_type
    yield "xml body", b"<records><r alcohol='1'/></records>", "application/xml"
    yield "form body", b"alcohol=1&pH=3", "application/x-www-form-urlencoded"
    # Valid-looking JSON that once answered 500: integers past the parser's digit limit or the float range.
    for digits in (400, 5_000):
        record = json.dumps({**example[0], "alcohol": 0}).encode()
        big = record.replace(b'"alcohol": 0', b'"alcohol": ' + b"9" * digits)
        yield f"{digits}-digit integer", b"[" + big + b"]", "application/json"


def infer_document(example: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [list(record.values()) for record in example]
    return {"inputs": [{"name": "x", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]}


def infer_cases(example: list[dict[str, Any]]) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(what, body, headers) for the /v2 infer fuzz: the same kinds of damage to an infer request, plus
    broken tensors and binary data whose declared sizes lie."""
    rng = random.Random(SEED + 1)
    document = infer_document(example)
    valid = json.dumps(document).encode()
    for _ in range(80):
        yield "random structure", json.dumps(random_value(rng, 0)).encode(), {}
    for _ in range(80):
        yield "mutated bytes", mutated(rng, valid), {}
    for _ in range(120):
        tensor = dict(document["inputs"][0])
        field = rng.choice(["name", "shape", "datatype", "data", "parameters", "extra"])
        tensor[field] = random_value(rng, 3)
        yield f"tensor {field}", json.dumps({"inputs": [tensor]}).encode(), {}
    values = b"\x00" * 8 * 24
    for _ in range(40):
        declared = rng.choice([0, 8, 100, 8 * 24, 8 * 25, -8, 2**70])
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [2, 12],
                        "datatype": "FP64",
                        "parameters": {"binary_data_size": declared},
                    }
                ]
            }
        ).encode()
        length = rng.choice([str(len(header)), str(len(header) + rng.randint(-5, 5)), "-1", "x", str(2**70)])
        body = header + values[: rng.randint(0, len(values))]
        yield (
            f"binary {declared} bytes, header length {length}",
            body,
            {"Inference-Header-Content-Length": length},
        )
    for length in ("\u00b2", "\u00b3", "1e3", "+10"):  # not ASCII digits ("²" passes str.isdigit)
        yield (
            f"header length {length!r}",
            valid,
            {"Inference-Header-Content-Length": length.encode("latin-1")},
        )
    for digits in (400, 5_000):
        data = b"[" + b"9" * digits + b"]"
        tensor = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":' + data + b"}]}"
        yield f"{digits}-digit integer in a tensor", tensor, {}
    for depth in (1_000, 100_000):
        yield f"{depth} nested lists", b"[" * depth + b"]" * depth, {}
        yield (
            f"{depth} nested data",
            b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":'
            + b"[" * depth
            + b"1"
            + b"]" * depth
            + b"}]}",
            {},
        )


def broken_contract(answer: httpx.Response, what: str, keys: set[str]) -> str | None:
    """Why this answer breaks the error contract (5xx, a non-JSON error, missing keys), or None."""
    if answer.status_code >= 500:
        return f"{what}: {answer.status_code} {answer.text[:120]}"
    if answer.status_code < 400:
        return None
    try:
        document = answer.json()
    except ValueError:
        return f"{what}: {answer.status_code} with a non-JSON body {answer.text[:120]!r}"
    if not keys <= set(document):
        return f"{what}: {answer.status_code} without {sorted(keys)}: {document}"
    return None


def test_no_input_breaks_the_error_contract(
    prediction_service: LocalService, example_records: list[dict]
) -> None:
    failures: list[str] = []
    seen = 0
    with httpx.Client(base_url=prediction_service.url, timeout=60) as http:
        for what, body, content_type in cases(example_records):
            seen += 1
            headers = {"Content-Type": content_type} if content_type else {}
            failure = broken_contract(
                http.post("/predict", content=body, headers=headers), what, {"error", "message"}
            )
            if failure:
                failures.append(failure)
        # Still serving, and still right.
        assert http.post("/predict", json=example_records).status_code == 200
    assert seen > 400
    assert failures == [], f"{len(failures)} of {seen} broke the contract: {failures[:10]}"


def test_no_infer_request_breaks_the_error_contract(
    prediction_service: LocalService, example_records: list[dict]
) -> None:
    """The same on /v2/models/<name>/infer, whose errors are the protocol's {"error": message}."""
    with httpx.Client(base_url=prediction_service.url, timeout=60) as http:
        name = http.post("/predict", json=example_records).json()["model_versions"]["predictor"].split("/")[0]
        path = f"/v2/models/{name}/infer"
        failures, statuses = [], []
        for what, body, headers in infer_cases(example_records):
            answer = http.post(path, content=body, headers=headers)
            statuses.append(answer.status_code)
            failure = broken_contract(answer, what, {"error"})
            if failure:
                failures.append(failure)
        assert http.post(path, json=infer_document(example_records)).status_code == 200
    assert len(statuses) > 300
    assert statuses.count(200) < len(statuses) / 2  # the fuzz mostly breaks the request, as meant
    assert failures == [], f"{len(failures)} of {len(statuses)} broke the contract: {failures[:10]}"


@pytest.mark.parametrize(
    "given",
    ["r-\u4e2d\u6587", "x" * 129, "ok INFO - {}", "two\nlines", "", "-starts-with-dash"],
    ids=["non-latin-1", "too-long", "log-separator", "newline", "empty", "leading-dash"],
)
def test_an_unacceptable_request_id_is_replaced_never_echoed(
    prediction_service: LocalService, example_records: list[dict], given: str
) -> None:
    """In the header of /predict and in the body of /v2 infer: the answer carries an id of the service's
    own, and the log line of the request is one the drift query still reads."""
    with httpx.Client(base_url=prediction_service.url, timeout=60) as http:
        name = http.post("/predict", json=example_records).json()["model_versions"]["predictor"].split("/")[0]
        document = {**infer_document(example_records), "id": given}
        answers = [
            http.post(f"/v2/models/{name}/infer", content=json.dumps(document).encode()),
        ]
        if given.isascii() and "\n" not in given:  # a header must be Latin-1 text on one line to be sent
            answers.append(http.post("/predict", json=example_records, headers={"X-Request-ID": given}))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        echoed = answer.headers["X-Request-ID"]
        assert echoed != given
        assert len(echoed) == 32
        # The drift query (modelops_drift.logs, the KQL's parsing) still reads the request's line.

        def queried(request_id: str = echoed) -> bool:
            lines = [line for line in prediction_service.log_text().splitlines() if request_id in line]
            return any(parse_line(line, DEFAULT_SERVICE_NAME) is not None for line in lines)

        wait_for(queried, 20, 0.1, "the request's monitoring line, read as the query reads it")
    ok = "client-id_1.2:3"
    with httpx.Client(base_url=prediction_service.url, timeout=60) as http:
        kept = http.post("/predict", json=example_records, headers={"X-Request-ID": ok})
    assert kept.headers["X-Request-ID"] == ok
