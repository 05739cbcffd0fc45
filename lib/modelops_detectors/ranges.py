"""Per-feature plausible ranges from the reference data: a guard for values far outside anything seen.

An isolation forest only splits inside the range of its training data, so a value far beyond it (chlorides
50 g/L where the reference tops out at 0.6) scores like the most extreme reference value: often not an
outlier at all. The detector therefore also flags rows with a feature outside the reference range widened
by `margin` times its span on each side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelops_detectors.interface import as_matrix


@dataclass(frozen=True)
class FeatureRanges:
    """Lower and upper plausible bounds per feature."""

    feature_names: list[str]
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_data(
        cls, X: np.ndarray | pd.DataFrame, feature_names: Sequence[str], margin: float = 0.5
    ) -> FeatureRanges:
        x = as_matrix(X, feature_names)
        low, high = x.min(axis=0), x.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        return cls(list(feature_names), low - margin * span, high + margin * span)

    def violations(self, X: np.ndarray | pd.DataFrame) -> list[list[str]]:
        """For each row, the features outside their bounds (NaN counts as outside)."""
        x = as_matrix(X, self.feature_names)
        outside = ~((x >= self.lower) & (x <= self.upper))
        return [[self.feature_names[j] for j in np.flatnonzero(row)] for row in outside]
