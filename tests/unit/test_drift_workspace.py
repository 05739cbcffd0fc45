"""The Log Analytics path, through the real LogsQueryClient and azure-core pipeline, on recorded answers.

The transport below is azure-core's own extension point: the client builds, signs and sends a real request
through its policies, and the transport answers with a stored JSON body instead of opening a connection.
"""

import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from azure.monitor.query import LogsQueryClient

from modelops_drift import build_query, query_drift, summarize
from modelops_drift.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "loganalytics"
WORKSPACE_ID = "00000000-1111-2222-3333-444444444444"
TOKEN = "recorded-test-token"


@dataclass
class RecordedTransport(HttpTransport):
    """Answers every request with one stored response and keeps the requests it was sent."""

    body_file: str
    status: int = 200
    requests_seen: list[HttpRequest] = field(default_factory=list)

    def send(self, request: HttpRequest, **kwargs: Any) -> RestRequestsTransportResponse:
        self.requests_seen.append(request)
        response = requests.Response()
        response.status_code = self.status
        response.reason = "OK" if self.status == 200 else "Error"
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response.raw = io.BytesIO((DATA / self.body_file).read_bytes())  # read as a socket would be
        response.url = request.url
        return RestRequestsTransportResponse(request=request, internal_response=response)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "RecordedTransport":
        return self

    def __exit__(self, *args: object) -> None:
        pass


@dataclass
class StaticCredential:
    """A token credential (both protocols azure-core knows) that records the scopes asked for."""

    scopes_seen: list[tuple[str, ...]] = field(default_factory=list)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes_seen.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes_seen.append(scopes)
        return AccessTokenInfo(TOKEN, int(time.time()) + 3600)


def client_for(
    body_file: str, status: int = 200
) -> tuple[LogsQueryClient, RecordedTransport, StaticCredential]:
    transport = RecordedTransport(body_file, status)
    credential = StaticCredential()
    client = LogsQueryClient(credential, transport=transport, retry_total=0)
    return client, transport, credential


def test_the_client_sends_the_issue_query_with_the_window_and_a_bearer_token() -> None:
    client, transport, credential = client_for("drift_query_ok.json")

    query_drift(client, WORKSPACE_ID, "WineQualityService", "7d")

    (request,) = transport.requests_seen
    assert request.method == "POST"
    assert request.url.startswith(f"https://api.loganalytics.io/v1/workspaces/{WORKSPACE_ID}/query")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body["query"] == build_query("WineQualityService", "7d")
    assert "ago (7d)" in body["query"]
    assert body["timespan"] == "PT604800.0S"  # the same seven days, as the query API's ISO-8601 duration
    assert credential.scopes_seen == [("https://api.loganalytics.io/.default",)]


def test_a_full_result_becomes_points_per_feature() -> None:
    client, _, _ = client_for("drift_query_ok.json")

    result = query_drift(client, WORKSPACE_ID)

    assert result.partial_error is None
    assert [p.timestamp for p in result.points] == [
        datetime(2026, 11, 20, 10, tzinfo=UTC),
        datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC),
        datetime(2026, 11, 22, 10, tzinfo=UTC),
    ]
    assert result.points[1].p_values == {"alcohol": 0.031, "volatile_acidity": 0.52, "density": 0.66}
    by_feature = {s.feature: s for s in summarize(result.points)}
    assert by_feature["alcohol"].latest_p_value == pytest.approx(0.004)
    assert by_feature["alcohol"].drifted_points == 2
    assert by_feature["is_red"].points == 2
    assert summarize(result.points)[0].feature == "alcohol"


def test_a_partial_result_keeps_its_rows_and_reports_the_error() -> None:
    client, _, _ = client_for("drift_query_partial.json")

    result = query_drift(client, WORKSPACE_ID)

    assert len(result.points) == 2
    assert result.partial_error is not None
    assert result.partial_error.startswith("PartialError:")


def test_the_cli_prints_the_summary_and_warns_about_a_partial_result() -> None:
    client, _, _ = client_for("drift_query_partial.json")
    out, err = io.StringIO(), io.StringIO()

    code = main(["--workspace-id", WORKSPACE_ID], stdout=out, stderr=err, client=client)

    assert code == 0
    assert "partial result" in err.getvalue()
    first_row = out.getvalue().splitlines()[1].split()
    assert first_row[:3] == ["alcohol", "2", "0.031"]


def test_a_failed_query_raises_and_the_cli_exits_2() -> None:
    client, _, _ = client_for("drift_query_not_found.json", status=404)
    with pytest.raises(HttpResponseError, match=r"Workspace could not be found|requested path"):
        query_drift(client, WORKSPACE_ID)

    client, _, _ = client_for("drift_query_not_found.json", status=404)
    err = io.StringIO()
    assert main(["--workspace-id", WORKSPACE_ID], stdout=io.StringIO(), stderr=err, client=client) == 2
    assert "Log Analytics query failed" in err.getvalue()
