"""JSON text: the service's one encoding (compact, strict) and fragments that are JSON already."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class RawJSON(str):
    """Text that is JSON already (encoded once for the response): spliced into log documents as is."""


def to_json(value: Any) -> str:
    """Compact strict JSON (NaN/Infinity are an error, as in starlette's JSONResponse)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def object_json(fields: Mapping[str, Any]) -> str:
    """A JSON object of `fields` in order: each value encoded by to_json, a RawJSON one spliced in as is."""
    members = (f"{json.dumps(k)}:{v if isinstance(v, RawJSON) else to_json(v)}" for k, v in fields.items())
    return "{" + ",".join(members) + "}"
