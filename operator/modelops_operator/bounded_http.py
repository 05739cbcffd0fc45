"""One HTTP call that a hostile server cannot stretch: a total deadline, a cap on the bytes read, no
redirects (so credentials never reach another origin), and every failure one HttpFailure kind.

A per-read socket timeout does not bound a call: a server that sends one byte every few seconds keeps a
reader forever, and one that streams an endless body fills the memory. Here a watchdog shuts the socket
down when the deadline passes, wherever the call is (connecting, reading headers or the body), and the
body is read in chunks up to `max_bytes`.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class HttpFailure(Exception):
    """The call did not produce a whole answer; `kind` says how (stable words, safe for a status)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


# The kinds of HttpFailure (what a status may say; the detail goes to the operator's log only).
NO_ANSWER = "no answer"  # connection refused, reset, DNS, TLS: nothing usable came back
TIMED_OUT = "no whole answer in time"
TOO_LARGE = "answer too large"
REDIRECTED = "redirected elsewhere"
BROKEN = "broken answer"  # not HTTP, or a body cut short


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer."""

    status: int
    reason: str
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


_context = ssl.create_default_context()


def call(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    deadline_seconds: float,
    max_bytes: int,
) -> Answer:
    """One request, bounded in time and bytes; raises HttpFailure. A 3xx is a failure (REDIRECTED)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpFailure(NO_ANSWER, f"not an http(s) URL: {url[:100]!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=deadline_seconds, context=_context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=deadline_seconds)
    expired = threading.Event()

    def cut() -> None:  # the deadline: end whatever the calling thread is blocked in
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(deadline_seconds, cut)
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    try:
        connection.request(method, target, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = _read_capped(response, max_bytes)
    except HttpFailure:
        raise
    except (http.client.HTTPException, OSError, ValueError) as e:
        if expired.is_set() or time.monotonic() - started >= deadline_seconds:
            raise HttpFailure(TIMED_OUT, f"within {deadline_seconds:g} s") from e
        kind = BROKEN if isinstance(e, http.client.HTTPException | ValueError) else NO_ANSWER
        raise HttpFailure(kind, f"{type(e).__name__}: {e}"[:300]) from e
    finally:
        watchdog.cancel()
        connection.close()
    if expired.is_set():
        raise HttpFailure(TIMED_OUT, f"within {deadline_seconds:g} s")
    if 300 <= response.status < 400:
        raise HttpFailure(REDIRECTED, f"HTTP {response.status}")
    content_type = response.getheader("Content-Type") or ""
    headers = {k.lower(): v[:4096] for k, v in response.getheaders()}
    return Answer(response.status, response.reason or "", data, content_type, headers)


def _read_capped(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while chunk := response.read1(65536):
        size += len(chunk)
        if size > max_bytes:
            raise HttpFailure(TOO_LARGE, f"more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
