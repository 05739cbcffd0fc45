"""The image's bytecode step covers what a real `bentoml serve` of the service imports.

The service image writes bytecode only for the modules `modelops_service.bytecode` imports (the rest of
site-packages stays source only, to keep the image small). Here a real `bentoml serve` loads the trained
models from the real MLflow registry and answers requests with Python's import log on
(PYTHONPROFILEIMPORTTIME, inherited by the worker); every module it imported that can be found must have
been imported by the bytecode step too, up to a small slack for optional imports that fail anyway.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_service.bytecode import ENTRY_MODULES
from tests.fixtures.service import start_service

pytestmark = pytest.mark.component

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$")
# Modules found on disk yet outside the step's imports: optional back-ends tried at run time (HTTP/2 and
# SOCKS transports, array API shims of absent libraries). Beyond this share the list has fallen behind.
MAX_UNCOVERED_SHARE = 0.02


def imported_by_serving(log: str) -> set[str]:
    return {match.group(1) for line in log.splitlines() if (match := IMPORT_LINE.match(line))}


def imported_by_step() -> set[str]:
    """sys.modules of a fresh interpreter after the step's imports (without writing anything)."""
    code = (
        "import importlib, json, sys\n"
        "from modelops_service.bytecode import ENTRY_MODULES\n"
        "for name in ENTRY_MODULES: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def test_the_bytecode_step_imports_what_serving_imports(
    service_models: dict[str, str], example_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    service = start_service(service_models, tmp_path, {"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        for _ in range(3):
            assert httpx.post(f"{service.url}/predict", json=example_records).status_code == 200
        log = service.log_text()
    finally:
        service.close()
    served = imported_by_serving(log)
    # Both processes logged: the serve process (CLI) and the worker (the models and their libraries).
    assert {"bentoml_cli.cli", "_bentoml_impl.server.app", "mlflow.artifacts", "skops.io"} <= served

    step = imported_by_step()
    assert set(ENTRY_MODULES) <= step
    uncovered = sorted(name for name in served - step if findable(name))
    assert len(uncovered) <= MAX_UNCOVERED_SHARE * len(served), (
        f"{len(uncovered)} of the {len(served)} modules serving imports get no bytecode in the image; "
        f"add their entry points to modelops_service.bytecode.ENTRY_MODULES: {uncovered}"
    )
