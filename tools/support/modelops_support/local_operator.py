"""The operator as a local process (`kopf run`), and kubectl beside it: for the demo, tests, benchmarks."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from modelops_support.lifecycle import Managed
from modelops_support.ports import free_port
from modelops_support.probes import probe
from modelops_support.process import Component
from modelops_support.waiting import WaitTimeout, wait_for


class OperatorExited(RuntimeError):
    """The operator process ended while it was expected to run."""


def operator_command(namespaces: Sequence[str], port: int, extra: Sequence[str] = ()) -> list[str]:
    """`kopf run` for this package's handlers: given namespaces or all, standalone, JSON logs, liveness."""
    scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    return [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "-m",
        "modelops_operator.handlers",
        *scope,
        "--standalone",
        "--log-format=json",
        f"--liveness=http://127.0.0.1:{port}/healthz",
        *extra,
    ]


class LocalOperator(Managed):
    """The operator in a subprocess with its log in a file; start() returns once /healthz answers."""

    def __init__(
        self,
        kubeconfig: Path | str,
        log_path: Path | str,
        namespaces: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        self.kubeconfig = str(kubeconfig)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.metrics_port = free_port()
        self.command = operator_command(namespaces, self.port, extra_args)
        # The operator's own /metrics on loopback (MODELOPS_OPERATOR_METRICS_ADDRESS), unless env moves it.
        metrics = {"MODELOPS_OPERATOR_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}"}
        self.env = {**os.environ, **metrics, **(env or {}), "KUBECONFIG": self.kubeconfig}
        self.startup_timeout = startup_timeout
        self.process: Component | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://{self.env['MODELOPS_OPERATOR_METRICS_ADDRESS']}/metrics"

    @property
    def pid(self) -> int:
        pid = self.process.pid if self.process is not None else None
        assert pid is not None, "not started"
        return pid

    def start(self) -> LocalOperator:
        self.process = Component("operator", self.command, self.log_path, self.env, append=True)
        self.process.start()
        try:
            wait_for(self.alive, self.startup_timeout, 0.25, "the operator's /healthz")
        except WaitTimeout as e:
            self.stop()
            raise OperatorExited(f"{e}: {self.log_tail()}") from e
        return self

    def alive(self) -> bool:
        """True when the process runs and /healthz answers; raises OperatorExited if it has ended."""
        if self.process is None or not self.process.is_running():
            raise OperatorExited(f"operator exited: {self.log_tail()}")
        return probe(f"http://127.0.0.1:{self.port}/healthz")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; stopping a stopped operator is a no-op."""
        process, self.process = self.process, None
        if process is not None:
            process.stop(timeout)
