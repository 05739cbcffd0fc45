"""Isolation-forest outlier scores as alibi-detect's IForest computes them, without per-tree Python loops:
the forest's trees are packed into flat arrays once and all trees walk all rows together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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


class PackedIsolationForest:
    """A fitted scikit-learn IsolationForest packed into node arrays; `score` equals alibi's IForest.score.

    Only public attributes of the fitted forest are read (estimators_, estimators_features_, tree_ and
    its compute_node_depths(), max_samples_, offset_).
    """

    def __init__(self, forest: Any) -> None:
        trees = forest.estimators_
        offsets = np.cumsum([0] + [tree.tree_.node_count for tree in trees[:-1]])
        features, thresholds, lefts, rights, values = [], [], [], [], []
        for tree, columns, offset in zip(trees, forest.estimators_features_, offsets, strict=True):
            t = tree.tree_
            path_lengths = t.compute_node_depths()  # public since scikit-learn 1.3; the root counts 1
            average_lengths = average_path_length(t.n_node_samples)
            leaf = t.children_left < 0
            node = np.arange(t.node_count)
            # Leaves point at themselves with an always-true split, so extra steps leave them in place.
            features.append(np.where(leaf, 0, np.asarray(columns)[np.maximum(t.feature, 0)]))
            thresholds.append(np.where(leaf, np.inf, t.threshold))
            lefts.append(np.where(leaf, node, t.children_left) + offset)
            rights.append(np.where(leaf, node, t.children_right) + offset)
            # The depth a row reaching this node adds, as scikit-learn's _parallel_compute_tree_depths.
            values.append(path_lengths + average_lengths - 1.0)
        self._feature = np.concatenate(features)
        self._threshold = np.concatenate(thresholds)
        self._left = np.concatenate(lefts)
        self._right = np.concatenate(rights)
        self._value = np.concatenate(values)
        self._roots = offsets.astype(np.intp)
        self._steps = max(tree.tree_.max_depth for tree in trees)
        self._denominator = len(trees) * float(average_path_length(np.array([forest.max_samples_]))[0])
        self._offset = float(forest.offset_)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Outlier score per row (higher is more anomalous): -decision_function, as alibi-detect's IForest."""
        # scikit-learn trees compare float32 copies of the inputs with their thresholds.
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
        rows = np.arange(x32.shape[0])[np.newaxis, :]
        node = np.broadcast_to(self._roots[:, np.newaxis], (self._roots.size, x32.shape[0])).copy()
        for _ in range(self._steps):
            go_left = x32[rows, self._feature[node]] <= self._threshold[node]
            node = np.where(go_left, self._left[node], self._right[node])
        depths = self._value[node].sum(axis=0)
        # For a single training sample scikit-learn sets the score to 1 (denominator and depth are 0).
        scores = np.ones_like(depths) if self._denominator == 0 else 2 ** (-depths / self._denominator)
        return scores + self._offset


class IsolationForestTest:
    """Outlier flags for a batch: score above the threshold inferred on the reference data, or a feature
    outside the detector's plausible range (a forest cannot isolate values beyond what it was fitted on)."""

    def __init__(
        self,
        forest: Any,
        threshold: float,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> None:
        self.packed = PackedIsolationForest(forest)
        self.threshold = float(threshold)
        self.lower = None if lower is None else np.asarray(lower, dtype=np.float64)
        self.upper = None if upper is None else np.asarray(upper, dtype=np.float64)

    def test(self, x: np.ndarray) -> OutlierReport:
        """Outlier report for a batch (rows, features)."""
        scores = self.packed.score(x)
        flags = scores > self.threshold
        if self.lower is not None and self.upper is not None:
            flags |= ~((x >= self.lower) & (x <= self.upper)).all(axis=1)
        return OutlierReport(
            threshold=self.threshold,
            is_outlier=flags.tolist(),
            instance_score=scores.tolist(),
        )
