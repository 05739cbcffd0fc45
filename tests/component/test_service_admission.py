"""A flood of connections against one worker of the real `bentoml serve`: requests past the admission
limit are answered 503 with Retry-After and the usual error body, every admitted one is answered, and the
kubelet's probes keep answering within their timeout throughout (the pod is never restarted for load)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_support.local_service import LocalService
from tests.fixtures.service import serving

pytestmark = pytest.mark.component

CONNECTIONS = 64
REQUESTS_EACH = 15  # bounded: 960 requests
PROBE_TIMEOUT = 3.0  # the Deployment's probes' timeoutSeconds


async def flood(
    service: LocalService, records: list[dict[str, Any]]
) -> tuple[list[httpx.Response], list[float]]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as http:
        answers: list[httpx.Response] = []
        probes: list[float] = []
        done = asyncio.Event()

        async def client() -> None:
            for _ in range(REQUESTS_EACH):
                answers.append(await http.post("/predict", json=records))

        async def probe() -> None:
            async with httpx.AsyncClient(base_url=service.url, timeout=PROBE_TIMEOUT) as prober:
                while not done.is_set():
                    started = asyncio.get_running_loop().time()
                    answer = await prober.get("/livez")
                    assert answer.status_code == 200
                    probes.append(asyncio.get_running_loop().time() - started)
                    await asyncio.sleep(0.2)

        watcher = asyncio.create_task(probe())
        await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        done.set()
        await watcher
    return answers, probes


def test_a_flood_is_shed_with_503_and_the_probes_keep_answering(
    service_models: dict[str, str], tmp_path: Path, example_records: list[dict]
) -> None:
    # A short queue bound, so that 64 connections shed on any machine (the default, 250 ms, is for pods).
    env = {"MODELOPS_MAX_CONCURRENCY": "4", "MODELOPS_MAX_QUEUE_MS": "50"}
    for service in serving(service_models, tmp_path, env):
        answers, probes = asyncio.run(flood(service, example_records))
        statuses = [a.status_code for a in answers]
        assert len(statuses) == CONNECTIONS * REQUESTS_EACH
        assert set(statuses) <= {200, 503}, sorted(set(statuses))
        shed = [a for a in answers if a.status_code == 503]
        assert shed, "64 connections against a limit of 4 shed nothing"
        assert statuses.count(200) > 0
        assert shed[0].headers["Retry-After"] == "1"
        assert shed[0].json()["error"] == "Overloaded"
        assert probes, "no probe answered during the flood"
        assert max(probes) < PROBE_TIMEOUT  # each within its timeout (httpx would have raised otherwise)
        # After the flood: serving as before.
        assert httpx.post(f"{service.url}/predict", json=example_records, timeout=30).status_code == 200
