"""The drift reference: training rows plus the standardisation, stored as plain numpy/JSON files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelops_detectors.interface import as_matrix


@dataclass(frozen=True)
class DriftReference:
    """Raw reference rows, per-feature mean/std (0/1 for categorical features) and the p-value cut."""

    feature_names: list[str]
    categorical: list[str]
    x_ref: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    p_val: float = 0.05

    @classmethod
    def from_data(
        cls,
        X: np.ndarray | pd.DataFrame,
        feature_names: Sequence[str],
        categorical: Sequence[str] = (),
        p_val: float = 0.05,
    ) -> DriftReference:
        """Build from training rows: continuous features get the training mean and std."""
        x_ref = as_matrix(X, feature_names)
        is_categorical = np.array([name in categorical for name in feature_names])
        mean = np.where(is_categorical, 0.0, x_ref.mean(axis=0))
        std = x_ref.std(axis=0)
        std = np.where(is_categorical | (std == 0), 1.0, std)
        return cls(list(feature_names), list(categorical), x_ref, mean, std, p_val)

    @property
    def categorical_indices(self) -> list[int]:
        return [self.feature_names.index(name) for name in self.categorical]

    def standardise(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """(X - mean) / std for continuous features; categorical features pass through."""
        return (as_matrix(X, self.feature_names) - self.mean) / self.std

    def save(self, directory: Path) -> Path:
        """Write x_ref.npy and reference.json into `directory`; return it."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "x_ref.npy", self.x_ref)
        meta = {
            "feature_names": self.feature_names,
            "categorical": self.categorical,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "p_val": self.p_val,
        }
        (directory / "reference.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> DriftReference:
        directory = Path(directory)
        meta = json.loads((directory / "reference.json").read_text())
        return cls(
            feature_names=list(meta["feature_names"]),
            categorical=list(meta["categorical"]),
            x_ref=np.load(directory / "x_ref.npy"),
            mean=np.asarray(meta["mean"], dtype=np.float64),
            std=np.asarray(meta["std"], dtype=np.float64),
            p_val=float(meta["p_val"]),
        )
