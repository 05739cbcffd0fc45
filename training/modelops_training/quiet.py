"""Quieter third-party output for command lines (the training CLI, the demo)."""

from __future__ import annotations

import logging
import os


def quiet_third_party_output() -> None:
    """No per-file artifact bars, no "View run" URLs, no "PyTorch not found" note from transformers
    (imported by alibi-detect, which needs neither), and MLflow's INFO chatter off."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
