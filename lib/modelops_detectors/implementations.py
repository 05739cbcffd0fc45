"""The detector implementations a model can be built with, by name; imported only when used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Implementation:
    """Where the drift and outlier classes live ("module:Class") and what a logged model needs installed."""

    drift: str
    outlier: str
    requirements: tuple[str, ...]


IMPLEMENTATIONS: dict[str, Implementation] = {
    # alibi-detect 0.13: Business Source License 1.1 (no production use without a licence from Seldon)
    "alibi": Implementation(
        drift="modelops_detectors.alibi:AlibiDriftDetector",
        outlier="modelops_detectors.alibi:AlibiOutlierDetector",
        requirements=("mlflow", "alibi-detect", "scikit-learn", "numpy", "pandas", "scipy", "joblib"),
    ),
    # scipy + scikit-learn only (BSD): the same tests and scores
    "permissive": Implementation(
        drift="modelops_detectors.permissive:ScipyDriftDetector",
        outlier="modelops_detectors.permissive:SklearnOutlierDetector",
        requirements=("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "joblib"),
    ),
}
DEFAULT_IMPLEMENTATION = "alibi"


def load_class(path: str) -> Any:
    """The class named by "module:Class"."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def implementation_of(detector: object, role: str) -> str:
    """The name under which `detector`'s class is registered for `role` ("drift" or "outlier")."""
    path = f"{type(detector).__module__}:{type(detector).__qualname__}"
    for name, implementation in IMPLEMENTATIONS.items():
        if getattr(implementation, role) == path:
            return name
    raise ValueError(f"{path} is not a registered {role} detector implementation")
