"""Isolation-forest outlier scores as alibi-detect's IForest computes them, without per-tree Python loops:
the forest's trees are packed into flat arrays once and all trees walk all rows together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops_service.trees import PackedTrees


@dataclass(frozen=True)
class OutlierReport:
    """Per-row outlier flags and scores (lists aligned with the request's records)."""

    threshold: float
    is_outlier: list[bool]
    instance_score: list[float]

    def as_dict(self) -> dict[str, object]:
        """The JSON form used in responses and logs."""
        return {
            "threshold": self.threshold,
            "is_outlier": self.is_outlier,
            "instance_score": self.instance_score,
        }


def average_path_length(n_samples: np.ndarray) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary search tree of n points.

    The normalisation of Liu et al.'s isolation forest (2008), as scikit-learn computes it: 0 for n <= 1,
    1 for n == 2, else 2 H(n - 1) - 2 (n - 1) / n with H(i) ~ ln(i) + Euler's gamma. Owned here rather than
    imported from scikit-learn's private module; a test pins the scores to IsolationForest.score_samples.
    """
    n = np.asarray(n_samples, dtype=np.float64)
    result = np.zeros_like(n)
    result[n == 2] = 1.0
    big = n > 2
    result[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return result


def float32_equivalent(thresholds: np.ndarray) -> np.ndarray:
    """Thresholds t' such that x <= t' exactly when float32(x) <= t, for any float64 x.

    scikit-learn's trees compare a float32 copy of the input with a float64 threshold. float32(x) <= t
    holds for the float32 values up to f, the largest at or below t; x rounds to at most f below the
    midpoint between f and the next float32 up, and at the midpoint itself when f is the even one (round
    half to even, as numpy's cast). So the rows are compared as they come, with no copy per request.
    Thresholds of fitted trees lie between float32 training values, far from float32's overflow."""
    t = np.asarray(thresholds, dtype=np.float64)
    f = t.astype(np.float32)
    f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)
    up = np.nextafter(f, np.float32(np.inf))
    middle = (f.astype(np.float64) + up.astype(np.float64)) / 2  # exact: two float32 values in float64
    f_is_even = (f.view(np.uint32) & 1) == 0
    return np.where(f_is_even, middle, np.nextafter(middle, -np.inf))


class PackedIsolationForest:
    """A fitted scikit-learn IsolationForest packed into node arrays; `score` equals alibi's IForest.score.

    Only public attributes of the fitted forest are read (estimators_, estimators_features_, tree_ and
    its compute_node_depths(), max_samples_, offset_).
    """

    def __init__(self, forest: Any, columns: np.ndarray | None = None) -> None:
        """`columns`: where the detector's features are in the rows to score (default: in its order)."""
        trees = forest.estimators_
        features, thresholds, lefts, rights, leaves, values = [], [], [], [], [], []
        for tree, features_of_tree in zip(trees, forest.estimators_features_, strict=True):
            t = tree.tree_
            path_lengths = t.compute_node_depths()  # public since scikit-learn 1.3; the root counts 1
            average_lengths = average_path_length(t.n_node_samples)
            leaf = t.children_left < 0
            detector_features = np.asarray(features_of_tree)[np.maximum(t.feature, 0)]
            features.append(detector_features if columns is None else np.asarray(columns)[detector_features])
            thresholds.append(float32_equivalent(t.threshold))
            lefts.append(t.children_left)
            rights.append(t.children_right)
            leaves.append(leaf)
            # The depth a row reaching this node adds, as scikit-learn's _parallel_compute_tree_depths.
            values.append(path_lengths + average_lengths - 1.0)
        depth = max(tree.tree_.max_depth for tree in trees)
        self.trees = PackedTrees(features, thresholds, lefts, rights, leaves, depth)
        self._value = self.trees.node_values(values)
        self.walk: Callable[[np.ndarray], np.ndarray] = self.trees.leaves  # or a JointWalk's part
        self._denominator = len(trees) * float(average_path_length(np.array([forest.max_samples_]))[0])
        self._offset = float(forest.offset_)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Outlier score per row (higher is more anomalous): -decision_function, as alibi-detect's IForest."""
        depths = self._value.take(self.walk(x)).sum(axis=0)
        # For a single training sample scikit-learn sets the score to 1 (denominator and depth are 0).
        # depths / -d is -depths / d to the last bit (IEEE division is sign-symmetric): one call fewer.
        scores = np.ones_like(depths) if self._denominator == 0 else 2 ** (depths / -self._denominator)
        scores += self._offset
        return scores


class IsolationForestTest:
    """Outlier flags for a batch: score above the threshold inferred on the reference data, or a feature
    outside the detector's plausible range (a forest cannot isolate values beyond what it was fitted on)."""

    def __init__(
        self,
        forest: Any,
        threshold: float,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
        columns: np.ndarray | None = None,
    ) -> None:
        """`columns`: where the detector's features are in the rows to test (default: in its order)."""
        self.packed = PackedIsolationForest(forest, columns)
        self.columns = columns
        self.threshold = float(threshold)
        self.lower = None if lower is None else np.asarray(lower, dtype=np.float64)
        self.upper = None if upper is None else np.asarray(upper, dtype=np.float64)

    def test(self, x: np.ndarray) -> OutlierReport:
        """Outlier report for a batch (rows, features)."""
        scores = self.packed.score(x)
        flags = scores > self.threshold
        if self.lower is not None and self.upper is not None:
            ordered = x if self.columns is None else x[:, self.columns]
            flags |= ((ordered < self.lower) | (ordered > self.upper)).any(axis=1)  # values are finite
        return OutlierReport(
            threshold=self.threshold,
            is_outlier=flags.tolist(),
            instance_score=scores.tolist(),
        )
