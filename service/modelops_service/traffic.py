"""Traffic middlewares of the service's ASGI app: load shedding and the request timeout.

AdmissionLimit: at most `limit` requests of the service's own routes in flight per worker. The worker
does each request's CPU work inline, one at a time. Without a bound, a flood of connections
queues hundreds of requests in front of the kubelet's probes, liveness fails and the pod is restarted
although it only needed to shed load. Past the limit a request is answered at once, for microseconds of
work: 503, Retry-After, and the usual error body. BentoML's own routes (/livez, /readyz, /metrics) are not
this app's and never wait behind it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from modelops_service.errors import ServiceError, error_body

Scope = dict[str, Any]
RETRY_AFTER_SECONDS = 1
# A shed request's body is read (up to this much) before the answer: a socket closed with unread data
# is reset, and a proxy that is still writing the body (Traefik) then turns the 503 into a 502 that
# nobody may retry.
MAX_DRAIN_BYTES = 1 << 20


class Overloaded(ServiceError):
    """This worker is working on as many requests as it takes at once."""

    status_code = 503
    reason = "Overloaded"


def _shed_response(limit: int, v2: bool) -> tuple[list[tuple[bytes, bytes]], bytes]:
    error = Overloaded(f"this server is working on {limit} requests; retry in {RETRY_AFTER_SECONDS} s")
    body = json.dumps(error_body(error, v2=v2)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        # The connection is not kept for another request: a flood's connections do not linger.
        (b"connection", b"close"),
    ]
    return headers, body


# How often the event loop's lag is probed (AdmissionLimit): how late a short sleep wakes up is how long
# the queue ahead of the app is. Two probes in a row must be late (past the service's max_queue_ms): one
# late wake-up is a stall (a neighbour's CPU burst, a collection), not a queue.
LAG_PROBE_SECONDS = 0.05


class AdmissionLimit:
    """Pure ASGI middleware (no per-request thread or task): sheds a request when `limit` are in flight
    or when the event loop lags more than `max_lag` seconds at two probes in a row (one sleeper task)."""

    def __init__(self, app: Any, limit: int, max_lag: float) -> None:
        self.app = app
        self.limit = limit
        self.max_lag = max_lag
        self.in_flight = 0
        self.shed = 0  # requests answered 503, for tests and the benchmark
        self.lag = 0.0  # how late the loop ran the lag probe's last wake-up, in seconds
        self.sustained_lag = 0.0  # the lesser of the last two: what a queue, not a stall, explains
        self._watcher: asyncio.Task[None] | None = None
        self._answers = {v2: _shed_response(limit, v2) for v2 in (False, True)}

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self.record_lag(max(loop.time() - started - LAG_PROBE_SECONDS, 0.0))

    def record_lag(self, lag: float) -> None:
        """One probe's lateness: the sustained lag is the lesser of it and the one before."""
        self.sustained_lag, self.lag = min(self.lag, lag), lag

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._watcher is None:  # started with the first request, in the worker's own loop
            self._watcher = asyncio.get_running_loop().create_task(self._watch_lag())
        if self.in_flight >= self.limit or self.sustained_lag > self.max_lag:
            self.shed += 1
            await _drain(receive)
            headers, body = self._answers[str(scope.get("path", "")).startswith("/v2")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _drain(receive: Any) -> None:
    """Read and drop the request's body, up to MAX_DRAIN_BYTES."""
    read = 0
    while read <= MAX_DRAIN_BYTES:
        message = await receive()
        if message.get("type") != "http.request":
            return  # the client went away
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestTimeout:
    """BentoML's TimeoutMiddleware with its timer cancelled when the request ends.

    BentoML 1.4's own (bentoml._internal.server.http.traffic.TimeoutMiddleware) schedules
    `loop.call_later(timeout, ...)` per request and never cancels it: every request's future, context and
    tracing span stay alive for the whole timeout (60 s). Under steady traffic that is tens of thousands
    of objects that every full garbage collection walks: the worker grew by ~9 MB per 10 s and slowed by
    a third (measured: 2,550 then 1,739 requests per 10 s on one connection). This one uses
    asyncio.timeout, whose timer is cancelled (and its references dropped) as the request ends, and runs
    the app in the request's own task instead of a new one. Installed in BentoML's place by
    service.py (`traffic={"timeout": ...}` keeps its meaning).
    """

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if started:
                raise
            body = json.dumps({"error": f"Not able to process the request in {self.timeout} seconds"})
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 504, "headers": headers})
            await send({"type": "http.response.body", "body": body.encode()})
