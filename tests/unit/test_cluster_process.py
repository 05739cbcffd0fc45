"""Component processes stop cleanly: SIGTERM first, SIGKILL after the deadline, the log kept."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from modelops_support.process import Component, ComponentExited
from modelops_support.waiting import wait_for

# A child that announces itself, then waits; with IGNORE_TERM it shrugs off SIGTERM.
CHILD = """
import os, signal, sys, time
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("started", flush=True)
while True:
    time.sleep(0.1)
"""


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def start(tmp_path: Path, ignore_term: bool) -> Component:
    env = {**os.environ, "IGNORE_TERM": "1" if ignore_term else ""}
    component = Component("child", [sys.executable, "-c", CHILD], tmp_path / "logs" / "child.log", env)
    component.start()
    wait_for(lambda: "started" in component.log_file.read_text(), 10, 0.05, "child started")
    return component


@pytest.mark.parametrize(("ignore_term", "exit_code"), [(False, -15), (True, -9)])
def test_stop_terminates_then_kills(tmp_path: Path, ignore_term: bool, exit_code: int) -> None:
    component = start(tmp_path, ignore_term)
    pid = component.pid
    assert pid is not None
    assert os.getpgid(pid) == pid, "each component leads its own process group"
    assert component.stop(timeout=0.5) == exit_code
    assert gone(pid)
    assert "started" in component.log_tail()
    assert component.stop() == exit_code  # idempotent


def test_check_running_reports_an_exit_with_the_log(tmp_path: Path) -> None:
    component = Component(
        "oops", [sys.executable, "-c", "print('bad flag'); raise SystemExit(3)"], tmp_path / "o.log"
    )
    component.start()
    wait_for(lambda: not component.is_running(), 10, 0.05, "child exited")
    with pytest.raises(ComponentExited, match=r"(?s)oops exited with code 3.*bad flag"):
        component.check_running()
