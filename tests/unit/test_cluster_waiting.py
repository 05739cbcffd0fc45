"""The polling helper shared by tests and the runner."""

from __future__ import annotations

import time

import pytest

from modelops_support.waiting import WaitTimeout, wait_for


def test_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "", "done"])
    assert wait_for(lambda: next(calls), timeout=5, interval=0.01) == "done"


def test_times_out_with_the_message_and_the_last_ignored_error() -> None:
    def failing() -> bool:
        raise ConnectionError("refused")

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the widget.*refused"):
        wait_for(failing, timeout=0.3, interval=0.05, message="the widget", ignore=(ConnectionError,))
    assert 0.3 <= time.monotonic() - started < 2


def test_other_errors_propagate_at_once() -> None:
    def broken() -> bool:
        raise KeyError("bug")

    started = time.monotonic()
    with pytest.raises(KeyError):
        wait_for(broken, timeout=10, interval=0.05, ignore=(ConnectionError,))
    assert time.monotonic() - started < 1


def test_wait_timeout_is_a_timeout_error() -> None:
    assert issubclass(WaitTimeout, TimeoutError)
