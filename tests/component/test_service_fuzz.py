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

import httpx
import pytest

from modelops_drift.logs import parse_line
from modelops_service.settings import DEFAULT_SERVICE_NAME
from modelops_support.fuzz import cases, infer_cases, infer_document
from modelops_support.local_service import LocalService
from modelops_support.waiting import wait_for

pytestmark = pytest.mark.component


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
