"""Drift and outlier detectors behind a small interface, and their MLflow pyfunc wrappers.

The interface (DriftDetector, OutlierDetector and their results) has no heavy imports; the alibi-detect
implementations live in `modelops_detectors.alibi`, the MLflow wrappers in `modelops_detectors.pyfunc`.
"""

from modelops_detectors.interface import DriftDetector, DriftResult, OutlierDetector, OutlierResult, as_matrix
from modelops_detectors.reference import DriftReference

__all__ = [
    "DriftDetector",
    "DriftReference",
    "DriftResult",
    "OutlierDetector",
    "OutlierResult",
    "as_matrix",
]
