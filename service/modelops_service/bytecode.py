"""Write the bytecode of what the served process imports: a step of the service image's build.

    python -m modelops_service.bytecode

The image installs its packages without bytecode (`pip install --no-compile`; PYTHONDONTWRITEBYTECODE
stops the non-root pod from writing any), so every pod compiled the ~3,500 modules that `bentoml serve`
and its worker import, in both processes: about half of the container's import time. Compiling all of
site-packages would add ~100 MB of bytecode to the image; importing the entry points below writes it for
what serving imports (~55 MB), and nothing else. A module they miss still loads, compiled at start-up:
tests/component/test_service_bytecode.py checks the list against what a real `bentoml serve` imports.
"""

from __future__ import annotations

import importlib
import sys

# What `bentoml serve modelops_service.service:ModelService` imports, by process.
ENTRY_MODULES: tuple[str, ...] = (
    # bentoml serve: the CLI, the arbiter and the service definition it reads
    "bentoml_cli.cli",
    "bentoml.serving",
    "_bentoml_impl.server.serving",
    "_bentoml_impl.server.allocator",
    # the worker: the ASGI app, its HTTP server and middleware
    "_bentoml_impl.worker.service",
    "_bentoml_impl.server.app",
    "_bentoml_impl.client",
    "bentoml._internal.server.http.access",
    "bentoml._internal.server.http.instruments",
    "bentoml._internal.server.http.traffic",
    "bentoml._internal.server.metrics.prometheus",
    "bentoml._internal.utils.telemetry",
    "bentoml.container",
    "_bentoml_impl.loader",
    "tornado.platform.asyncio",
    "pynvml",
    "opentelemetry.instrumentation.asgi",
    "prometheus_client.multiprocess",
    "uvicorn.main",
    "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.middleware.proxy_headers",
    "uvicorn.supervisors",
    "a2wsgi",
    # the service and what loading its models imports (MLflow's client, the scikit-learn predictor read
    # through skops, the detectors' saved state)
    "modelops_service.service",
    "modelops_service.metrics",
    "modelops_service.pipeline",
    "modelops_service.model_loader",
    "modelops_detectors.saved",
    "mlflow.artifacts",
    "mlflow.sklearn",
    "mlflow.tracking.request_header.registry",
    "skops.io",
)


def main() -> int:
    sys.dont_write_bytecode = False  # the image sets PYTHONDONTWRITEBYTECODE; this step is the exception
    for name in ENTRY_MODULES:
        importlib.import_module(name)
    sys.stdout.write(f"bytecode written for {len(sys.modules)} modules\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
