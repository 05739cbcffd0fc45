"""Memory is bounded by configuration, not by traffic: one worker of the real `bentoml serve`, the fuzz
corpus and then normal traffic leave its RSS within a few MB of where it was (the issue measured +74 MB:
BentoML's request timeout kept every request alive for 60 s; traffic.RequestTimeout ends with it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_support.fuzz import cases
from modelops_support.local_service import LocalService
from tests.fixtures.service import serving

pytestmark = pytest.mark.component

RSS_BOUND_MIB = 10.0  # the bound: after the fuzz corpus and 30 s of normal traffic
NORMAL_SECONDS = 30.0
NORMAL_MAX_REQUESTS = 20_000  # bounded in count as well as in time


def worker_rss_mib(service: LocalService) -> float:
    (worker,) = service.worker_pids()
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def normal_traffic(http: httpx.Client, records: list[dict[str, Any]], seconds: float, most: int) -> int:
    end, sent = time.monotonic() + seconds, 0
    while time.monotonic() < end and sent < most:
        assert http.post("/predict", json=records).status_code == 200
        sent += 1
    return sent


def test_bad_traffic_leaves_no_lasting_growth(
    service_models: dict[str, str], tmp_path: Path, example_records: list[dict]
) -> None:
    for service in serving(service_models, tmp_path):
        with httpx.Client(base_url=service.url, timeout=60) as http:
            normal_traffic(http, example_records, 10, 5_000)  # warm: caches, allocator, first window tests
            before = worker_rss_mib(service)
            for _what, body, content_type in cases(example_records):
                answer = http.post(
                    "/predict", content=body, headers={"Content-Type": content_type} if content_type else {}
                )
                assert answer.status_code < 500
            sent = normal_traffic(http, example_records, NORMAL_SECONDS, NORMAL_MAX_REQUESTS)
            after = worker_rss_mib(service)
        assert sent > 100
        assert after - before <= RSS_BOUND_MIB, (
            f"worker RSS {before:.1f} -> {after:.1f} MiB after {sent} requests"
        )
