"""Local state: $MODELOPS_STATE_DIR or ./.modelops (registry, artifacts, registered_models.json)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "MODELOPS_STATE_DIR"


def state_dir() -> Path:
    """The project state directory (not created here)."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".modelops").resolve()


def default_tracking_uri(state: Path) -> str:
    """The sqlite registry that the Makefile's `mlflow-ui` target also serves."""
    return f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"


def default_output(state: Path) -> Path:
    return state / "registered_models.json"


def sqlite_artifact_root(tracking_uri: str) -> Path | None:
    """For a sqlite:/// registry, the artifacts folder beside its database; None for other stores."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix) :]).parent / "artifacts"
