"""A local `mlflow server` (sqlite + served artifacts) on a free loopback port, for tests and the demo."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from modelops_support.lifecycle import Managed
from modelops_support.ports import free_port
from modelops_support.probes import probe
from modelops_support.process import Component
from modelops_support.waiting import WaitTimeout, wait_for

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# MLflow 3's server also starts a job runner and seven huey consumers (GenAI scorer jobs), each a Python
# process that imports MLflow: several times the server's own start-up CPU, for nothing this project uses.
SERVER_ENV_DEFAULTS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def build_server_command(root_dir: Path, port: int, workers: int = 1, host: str = HOST) -> list[str]:
    """The `mlflow server` command line for a sqlite store and local artifacts under `root_dir`.

    On an address other than loopback (a real node's bridge, reached from pods) the server is told to
    accept that Host header too: MLflow refuses unknown ones.
    """
    allowed = (
        [] if host == HOST else ["--allowed-hosts", f"{host}:{port},{host},localhost:{port},{HOST}:{port}"]
    )
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root_dir / 'mlflow.db'}",
        "--artifacts-destination",
        str(root_dir / "artifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *allowed,
    ]


class MlflowServerError(RuntimeError):
    """The MLflow server did not start or stop as asked."""


class LocalMlflowServer(Managed):
    """Runs `mlflow server` on 127.0.0.1 (or `host`); stop() and start() again keep the port and store.

    Two servers may share one store: a real node's pods reach a second one on the node's bridge address.
    """

    def __init__(
        self,
        root_dir: Path | str,
        port: int | None = None,
        startup_timeout: float = 300.0,
        host: str = HOST,
    ) -> None:
        self.root_dir = Path(root_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        suffix = "" if host == HOST else f"-{host}"
        self.log_path = self.root_dir / f"mlflow-server{suffix}.log"
        self._process: Component | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def start(self) -> LocalMlflowServer:
        """Start the server (no-op when running) and wait for /health, or raise with the log's tail."""
        if self.running:
            return self
        self.root_dir.mkdir(parents=True, exist_ok=True)
        (self.root_dir / "artifacts").mkdir(exist_ok=True)
        env = {**SERVER_ENV_DEFAULTS, **os.environ, "PYTHONUNBUFFERED": "1"}
        command = build_server_command(self.root_dir, self.port, host=self.host)
        self._process = Component("mlflow", command, self.log_path, env, cwd=self.root_dir, append=True)
        self._process.start()  # its own process group: stop() ends the workers too
        try:
            self._wait_healthy()
        except MlflowServerError:
            self.stop()
            raise
        log.info("MLflow server ready at %s (store %s)", self.tracking_uri, self.root_dir)
        return self

    def _wait_healthy(self) -> None:
        def healthy() -> bool:
            if self._process is None or not self._process.is_running():
                raise MlflowServerError(f"mlflow server exited early; log:\n{self.log_tail()}")
            return self.healthy()

        try:
            wait_for(healthy, self.startup_timeout, 0.25, "the MLflow server's /health")
        except WaitTimeout as e:
            raise MlflowServerError(f"{e}; log:\n{self.log_tail()}") from e

    def healthy(self) -> bool:
        """True when GET /health answers 200."""
        return probe(f"{self.tracking_uri}/health")

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate the server's process group; kill it if it does not exit within `timeout`."""
        process, self._process = self._process, None
        if process is None or not process.is_running():
            return
        process.stop(timeout)  # the group: workers that outlive the parent for a moment too
        self._wait_port_closed(timeout)

    def restart(self) -> LocalMlflowServer:
        """Stop and start again on the same port and store."""
        self.stop()
        return self.start()

    def _wait_port_closed(self, timeout: float) -> None:
        def closed() -> bool:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                return sock.connect_ex((self.host, self.port)) != 0

        try:
            wait_for(closed, timeout, 0.1, f"port {self.port} to close after stopping MLflow")
        except WaitTimeout as e:
            raise MlflowServerError(str(e)) from e

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
