"""The I/O edge of status.drift: find the ready pods of a ModelDeployment and read their /metrics.

Pods are found through the Service's EndpointSlices and asked directly (every pod keeps its own drift
window, so asking the Service would report one pod at random). The operator needs network access to the
pods on the service port, as Prometheus does; MODELOPS_METRICS_URL_TEMPLATE changes the URL (e.g. to go
through a proxy).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp

import modelops_contract as contract
from modelops_operator import drift_status as ds
from modelops_operator.builders.common import HTTP_PORT_NAME, OWNER_LABEL
from modelops_operator.canary import CANARY, TRACK_LABEL
from modelops_operator.kube import Kube, KubeError

T = TypeVar("T")
SCRAPE_TIMEOUT_SECONDS = 3.0
MAX_METRICS_BYTES = 4 << 20
MAX_READY_BYTES = 16 << 10  # a readiness answer: an error body of a few hundred bytes


def _error_text(error: BaseException) -> str:
    """A short error description that does not change between polls (no addresses or ports)."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status}"
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return f"no answer within {SCRAPE_TIMEOUT_SECONDS:.0f}s"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(error, ValueError):  # ours: a redirect, a non-200, more than MAX_METRICS_BYTES
        return str(error)[:80]
    return type(error).__name__


async def _scrape(session: aiohttp.ClientSession, url: str) -> str:
    """The whole /metrics text (read to its end, at most MAX_METRICS_BYTES; never a redirect)."""
    async with session.get(url, raise_for_status=True, allow_redirects=False) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > MAX_METRICS_BYTES:
                raise ValueError("metrics larger than 4 MiB")
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")


async def _ask_each(
    endpoints: list[ds.Endpoint],
    url_template: str,
    namespace: str,
    name: str,
    ask: Callable[[aiohttp.ClientSession, str], Awaitable[T]],
) -> list[T | BaseException]:
    """`ask` every endpoint at once (SCRAPE_TIMEOUT_SECONDS in all): its answer or its error, in order."""
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        urls = [ds.metrics_url(url_template, e, namespace, name) for e in endpoints]
        return await asyncio.gather(*(ask(session, url) for url in urls), return_exceptions=True)


async def scrape_endpoints(
    endpoints: list[ds.Endpoint], url_template: str, namespace: str, name: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Every endpoint's /metrics at once: (pod -> text, pod -> error of those that did not answer)."""
    results = await _ask_each(endpoints, url_template, namespace, name, _scrape)
    texts: dict[str, str] = {}
    failures: dict[str, str] = {}
    for endpoint, result in zip(endpoints, results, strict=True):
        if isinstance(result, BaseException):
            failures[endpoint.pod] = _error_text(result)
        else:
            texts[endpoint.pod] = result
    return texts, failures


def readiness_url_template(metrics_template: str) -> str | None:
    """The OIP readiness URL of a pod, made from the metrics URL template by its path (None when the
    template does not end with the service's metrics path: a proxy that only knows /metrics)."""
    if not metrics_template.endswith(contract.METRICS_PATH):
        return None
    return metrics_template.removesuffix(contract.METRICS_PATH) + contract.OIP_READY_PATH


def load_error_of(status: int, body: bytes) -> str | None:
    """The reason in a readiness answer that says the pod's models failed to load (contract.LOAD_FAILED),
    cut at 300 characters (a pod's answer is its tenant's); None for any other answer."""
    if status != 503 or len(body) > MAX_READY_BYTES:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("reason") != contract.LOAD_FAILED:
        return None
    return str(doc.get("error", ""))[:300]  # the protocol's error object: "error" is the message


async def _load_error(session: aiohttp.ClientSession, url: str) -> str | None:
    async with session.get(url, allow_redirects=False) as response:
        body = await response.content.read(MAX_READY_BYTES + 1)
        return load_error_of(response.status, body)


async def load_errors(
    pods: list[ds.Endpoint], metrics_template: str, namespace: str, name: str
) -> dict[str, str]:
    """Pod -> why its models do not load, for the pods (not ready) that say so on their OIP readiness
    route; a pod that does not answer, or answers anything else, is left out."""
    template = readiness_url_template(metrics_template)
    if template is None or not pods:
        return {}
    results = await _ask_each(pods, template, namespace, name, _load_error)
    return {p.pod: r for p, r in zip(pods, results, strict=True) if isinstance(r, str)}


async def observe(kube: Kube, body: Mapping[str, Any], url_template: str, now: str) -> dict[str, Any]:
    """status.drift as the pods report it now (a dict of the keys in drift_status.DRIFT_KEYS)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    previous = (body.get("status") or {}).get("drift")
    if not ((body.get("spec") or {}).get("serving") or {}).get("monitoring", True):
        return ds.disabled(previous, now)
    selector = f"kubernetes.io/service-name={name}"
    try:
        slices = await asyncio.to_thread(
            kube.list_objects, "discovery.k8s.io/v1", "EndpointSlice", namespace, selector
        )
    except KubeError as e:  # e.g. RBAC without endpointslices: say so in the status, once
        return ds.unknown(
            f"cannot list the Service's EndpointSlices: HTTP {e.status} {e.reason}", previous, now
        )
    endpoints = ds.ready_endpoints(slices, HTTP_PORT_NAME, name)
    if (body.get("spec") or {}).get("canary"):  # the stable pods' drift: a canary is judged on its own
        try:
            canary = await asyncio.to_thread(
                kube.list_objects, "v1", "Pod", namespace, f"{OWNER_LABEL}={name},{TRACK_LABEL}={CANARY}"
            )
        except KubeError as e:
            return ds.unknown(f"cannot list the canary's pods: HTTP {e.status} {e.reason}", previous, now)
        canary_pods = {pod["metadata"]["name"] for pod in canary}
        endpoints = [e for e in endpoints if e.pod not in canary_pods]
    texts, failures = await scrape_endpoints(endpoints, url_template, namespace, name)
    pods = [ds.parse_pod_metrics(pod, text) for pod, text in texts.items()]
    return ds.summarise(pods, failures, previous, now)
