"""The service's error contract holds for every input: a fuzz of /predict on the real `bentoml serve`.

Fixed seed, bounded count (about 450 requests): random JSON structures, mutated bytes of a valid body,
deep nesting, records with wrong or missing fields, wrong content types. Every answer is 2xx or 4xx (never
5xx), every error has a JSON body with `error` and `message`, and the server keeps serving.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelops_support.local_service import LocalService

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


def test_no_input_breaks_the_error_contract(
    prediction_service: LocalService, example_records: list[dict]
) -> None:
    failures: list[str] = []
    seen = 0
    with httpx.Client(base_url=prediction_service.url, timeout=60) as http:
        for what, body, content_type in cases(example_records):
            seen += 1
            headers = {"Content-Type": content_type} if content_type else {}
            answer = http.post("/predict", content=body, headers=headers)
            if answer.status_code >= 500:
                failures.append(f"{what}: {answer.status_code} {answer.text[:120]}")
                continue
            if answer.status_code >= 400:
                try:
                    document = answer.json()
                except ValueError:
                    failures.append(
                        f"{what}: {answer.status_code} with a non-JSON body {answer.text[:120]!r}"
                    )
                    continue
                if not {"error", "message"} <= set(document):
                    failures.append(f"{what}: {answer.status_code} without error/message: {document}")
        # Still serving, and still right.
        assert http.post("/predict", json=example_records).status_code == 200
    assert seen > 400
    assert failures == [], f"{len(failures)} of {seen} broke the contract: {failures[:10]}"
