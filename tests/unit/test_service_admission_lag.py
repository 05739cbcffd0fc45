"""The admission limit's lag rule: a queue (lag at two probes in a row) sheds, one stall does not."""

import asyncio

from modelops_service.traffic import AdmissionLimit

MAX_LOOP_LAG_SECONDS = 0.25


async def _ok(scope: dict, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def status_of(limit: AdmissionLimit, unread: list[int] | None = None) -> int:
    """The status `limit` answers a POST with a two-part body; `unread` gets the parts left unread."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    bodies = [{"type": "http.request", "body": b"[1, 2]", "more_body": True}, {"type": "http.request"}]

    async def receive() -> dict:
        return bodies.pop(0)

    async def call() -> None:
        await limit({"type": "http", "path": "/predict"}, receive, send)
        assert limit._watcher is not None
        limit._watcher.cancel()

    asyncio.run(call())
    if unread is not None:
        unread.append(len(bodies))
    return int(sent[0]["status"])


def test_one_late_probe_is_a_stall_and_sheds_nothing() -> None:
    limit = AdmissionLimit(_ok, limit=16, max_lag=MAX_LOOP_LAG_SECONDS)
    limit.record_lag(0.0)
    limit.record_lag(MAX_LOOP_LAG_SECONDS * 3)  # one stall
    assert status_of(limit) == 200
    limit.record_lag(0.01)
    assert status_of(limit) == 200


def test_lag_at_two_probes_in_a_row_is_a_queue_and_sheds() -> None:
    limit = AdmissionLimit(_ok, limit=16, max_lag=MAX_LOOP_LAG_SECONDS)
    limit.record_lag(MAX_LOOP_LAG_SECONDS * 2)
    limit.record_lag(MAX_LOOP_LAG_SECONDS * 1.5)
    unread: list[int] = []
    assert status_of(limit, unread) == 503
    assert limit.shed == 1
    assert unread == [0]  # the body was read before the answer: the close is not a reset
    limit.record_lag(0.0)  # the queue drained
    assert status_of(limit) == 200
