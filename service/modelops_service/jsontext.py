"""JSON text: the service's one encoding (compact) and fragments that are JSON already.

Encoded by orjson: every response and every log line is JSON, and the standard library's encoder spent more
on a request's drift report (36 floats) than the drift test itself (13 us against 0.8). orjson writes
NaN and infinities as null (valid JSON, where the standard encoder refused them strictly)."""

from __future__ import annotations

from typing import Any

import orjson


class RawJSON(str):
    """Text that is JSON already (encoded once for the response): spliced into documents as is."""


def _fragment(value: Any) -> Any:
    if isinstance(value, RawJSON):
        return orjson.Fragment(str(value))
    raise TypeError(f"not JSON: {type(value).__name__}")


def to_json(value: Any) -> str:
    """Compact JSON of plain values (str keys; lists, dicts, str, int, float, bool, None), a RawJSON
    anywhere in them spliced in as is."""
    return orjson.dumps(value, default=_fragment, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()
