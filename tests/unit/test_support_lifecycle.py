"""SIGTERM takes Ctrl-C's path in the demo and the harnesses: what a with-block started is stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import sys, time
from pathlib import Path
from modelops_support.lifecycle import Managed, run_main

class Marker(Managed):
    def start(self):
        return self
    def stop(self):
        Path(sys.argv[1]).write_text("stopped")

def main():
    with Marker():
        print("started", flush=True)
        time.sleep(60)
    return 0

run_main(main)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_what_the_program_started(tmp_path: Path, sig: signal.Signals) -> None:
    marker = tmp_path / "stopped"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    child.send_signal(sig)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    assert marker.read_text() == "stopped"
    assert "interrupted" in stderr
