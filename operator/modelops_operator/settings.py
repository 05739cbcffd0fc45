"""The operator's settings from its environment, checked at start-up (a bad value stops it with a message)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def seconds_setting(environ: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    """A number of seconds from the environment variable `name` (unset or empty: `default`).

    Positive and finite; 0 too when `allow_zero` (a setting that 0 turns off). Raises ValueError naming it.
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds == math.inf:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number of seconds {bound}, not {raw!r}")
    return seconds
