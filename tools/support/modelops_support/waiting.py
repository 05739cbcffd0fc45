"""Polling with a deadline: the one way tests and the runner wait for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.5,
    message: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns a truthy value and return that value, or raise WaitTimeout.

    Exceptions listed in `ignore` count as "not yet" (their last one is named in the timeout message);
    any other exception propagates at once, so a bug is not mistaken for slowness.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as e:
            result, last_error = None, e
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {message}{detail}")
        time.sleep(min(interval, remaining))


def observe(sample: Callable[[], T], seconds: float, interval: float = 1.0) -> list[T]:
    """What `sample()` returns every `interval` for `seconds`: an observation window, for a test that
    asserts something does not happen (it looks for that long, then asserts on what it saw)."""
    end = time.monotonic() + seconds
    seen = [sample()]
    while (remaining := end - time.monotonic()) > 0:
        time.sleep(min(interval, remaining))
        seen.append(sample())
    return seen
