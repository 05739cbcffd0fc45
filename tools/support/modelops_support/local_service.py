"""Run `bentoml serve` for given model URIs on a free loopback port, wait until ready, stop it.

Used by the demo, the tests and the benchmark:

    with LocalService(predictor="models:/wine_quality/3", drift=..., outlier=..., tracking_uri=...) as svc:
        httpx.post(f"{svc.url}/predict", json=records)
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import modelops_contract as contract
from modelops_support.lifecycle import Managed
from modelops_support.ports import free_port
from modelops_support.process import Component
from modelops_support.waiting import WaitTimeout, wait_for

HOST = "127.0.0.1"
SERVICE_TARGET = "modelops_service.service:ModelService"


def build_serve_command(target: str, port: int, host: str = HOST) -> list[str]:
    """The `bentoml serve` command line for a service import path or a bento tag."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def build_service_env(
    base: Mapping[str, str],
    *,
    predictor: str | None = None,
    drift: str | None = None,
    outlier: str | None = None,
    tracking_uri: str | None = None,
    workers: int = 1,
    bentoml_home: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the served process (the operator's container contract, plus BENTOML_HOME)."""
    env = dict(base)
    for key, value in (
        (contract.MODEL_URI["predictor"], predictor),
        (contract.MODEL_URI["drift"], drift),
        (contract.MODEL_URI["outlier"], outlier),
        (contract.TRACKING_URI, tracking_uri),
    ):
        if value:
            env[key] = value
    env[contract.WORKERS] = str(workers)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if bentoml_home is not None:
        env["BENTOML_HOME"] = str(bentoml_home)
    env.update(extra or {})
    return env


def descendants(pid: int) -> list[int]:
    """All live descendants of a process (Linux /proc), children first."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(child) for child in handle.read().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by the given live processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalServiceError(RuntimeError):
    """The service did not become ready, or exited."""


class LocalService(Managed):
    """`bentoml serve` in its own process group on 127.0.0.1; stdout/stderr go to `log_path`."""

    def __init__(
        self,
        predictor: str | None = None,
        drift: str | None = None,
        outlier: str | None = None,
        *,
        tracking_uri: str | None = None,
        target: str = SERVICE_TARGET,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        workdir: Path | str | None = None,
        bentoml_home: Path | str | None = None,
        port: int | None = None,
        startup_timeout: float = 300.0,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="modelops-service-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.target = target
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / f"service-{self.port}.log"
        home = Path(bentoml_home) if bentoml_home else self.workdir / "bentoml"
        self.env = build_service_env(
            os.environ,
            predictor=predictor,
            drift=drift,
            outlier=outlier,
            tracking_uri=tracking_uri,
            workers=workers,
            bentoml_home=home,
            extra=env,
        )
        self._process: Component | None = None

    @classmethod
    def for_models(cls, models: Mapping[str, str], **options: Any) -> LocalService:
        """A service for {predictor, drift, outlier, tracking_uri} model URIs (a test's or a benchmark's)."""
        roles = (models["predictor"], models["drift"], models["outlier"])
        return cls(*roles, tracking_uri=models.get("tracking_uri"), **options)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, wait_ready: bool = True) -> LocalService:
        """Start the server and (unless told not to) wait until /readyz answers 200 (models loaded)."""
        command = build_serve_command(self.target, self.port)
        self._process = Component("service", command, self.log_path, self.env, cwd=self.workdir, append=True)
        self._process.start()  # its own process group, so that stop() reaches the workers too
        if not wait_ready:
            return self
        try:
            self.wait_ready(self.startup_timeout)
        except LocalServiceError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll /readyz until 200, the process exits, or the deadline passes."""

        def ready() -> bool:
            if self._process is not None and not self._process.is_running():
                raise LocalServiceError(
                    f"bentoml serve exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            return self.probe("/readyz") == 200

        try:
            wait_for(ready, timeout, 0.2, "the service's /readyz")
        except WaitTimeout as e:
            raise LocalServiceError(f"{e}:\n{self.log_tail()}") from e

    def probe(self, path: str) -> int | None:
        """HTTP status of a GET, or None when nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)
        except (urllib.error.URLError, OSError):
            return None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        """The `bentoml serve` arbiter's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def worker_pids(self) -> list[int]:
        """The worker processes (each in its own process group, so listed from /proc)."""
        pid = self._process.pid if self._process is not None else None
        return descendants(pid) if pid is not None else []

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the arbiter's group (it stops its workers), SIGKILL after `timeout`, then any
        worker left behind (workers run in process groups of their own)."""
        process, self._process = self._process, None
        if process is None or process.pid is None:
            return
        workers = descendants(process.pid)
        process.stop(timeout)  # the arbiter's group; workers run in process groups of their own
        with contextlib.suppress(WaitTimeout):
            wait_for(lambda: not any(_alive(pid) for pid in workers), 10, 0.1, "the workers to exit")
        for pid in workers:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop and remove the temporary working directory (if this object made one)."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
