"""The one process supervisor of the development harnesses: a child process in its own process group,
writing to its own log file, stopped cleanly (the local cluster's components, MLflow, the service, the
operator all run on it)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when the thread that started it ends.

    This is the last line of defence against orphans when the Python process is SIGKILLed and neither
    atexit nor a finally block runs. Linux ties the signal to the starting *thread*, so it is only used
    when starting from the main thread (a worker thread that ends would take the cluster with it).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


class ComponentExited(RuntimeError):
    """A component ended while it was expected to run."""


class Component:
    """A named child process writing stdout and stderr to one log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        append: bool = False,
    ):
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self.append = append  # keep the log of earlier runs (a restarted server) instead of truncating it
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        """Start the process in a new session (so its whole group can be signalled)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab" if self.append else "wb") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # only a prctl call: safe between fork and exec
            )

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def check_running(self) -> None:
        """Raise ComponentExited (with the end of its log) when the process has ended."""
        if self._popen is None:
            raise ComponentExited(f"{self.name} was never started")
        code = self._popen.poll()
        if code is not None:
            raise ComponentExited(
                f"{self.name} exited with code {code}; log {self.log_file}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout` seconds; return the exit code.

        Then SIGKILL whatever of the group outlived its leader (servers' workers); idempotent.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout)
        self._signal_group(popen.pid, signal.SIGKILL)
        return popen.returncode

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
