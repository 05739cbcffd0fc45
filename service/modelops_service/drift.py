"""Feature drift as alibi-detect's TabularDrift computes it (K-S per numeric, chi-squared per categorical
column, no correction), made cheap per call: the reference is sorted once and each test only looks at
the few reference points where the empirical CDF difference can peak."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from scipy.stats import kstwo


@dataclass(frozen=True)
class DriftReport:
    """Per-feature result of one drift test."""

    threshold: float
    p_value: dict[str, float]
    distance: dict[str, float]
    is_drift: dict[str, bool]
    rows: int

    @property
    def any_drift(self) -> bool:
        """True when at least one feature drifted."""
        return any(self.is_drift.values())

    def as_dict(self) -> dict[str, object]:
        """The JSON form used in responses and logs (maps from feature name to value)."""
        return {
            "threshold": self.threshold,
            "is_drift": self.is_drift,
            "p_value": self.p_value,
            "distance": self.distance,
        }


CHI2_CACHE_SIZE = 4096  # distinct batch category counts remembered per categorical feature set


@functools.lru_cache(maxsize=65536)
def ks_sf(statistic: float, n: int) -> float:
    """Survival function of the two-sided one-sample K-S statistic for n (scipy's kstwo.sf).

    Memoised: for a small batch against a fixed reference the statistic takes few distinct values
    (|i/n_ref - j/n| for integers i, j), so requests of the same size keep hitting the cache."""
    return min(max(float(kstwo.sf(statistic, n)), 0.0), 1.0)


def ks_statistic(sorted_ref: np.ndarray, x: np.ndarray) -> float:
    """Two-sided K-S distance between a sorted reference and a sample, equal to scipy's ks_2samp.

    Between two consecutive sample values the sample CDF is flat while the reference CDF rises, so
    the largest and smallest differences over the reference points sit at the last reference point
    before each sample value, at the first one from each sample value on, and at both ends.
    """
    xs = np.sort(x)
    n1, n2 = sorted_ref.shape[0], xs.shape[0]
    before = np.searchsorted(sorted_ref, xs, side="left") - 1
    from_on = np.searchsorted(sorted_ref, xs, side="left")
    index = np.concatenate((before, from_on, [0, n1 - 1]))
    index = index[(index >= 0) & (index < n1)]
    points = np.concatenate((sorted_ref[index], xs))
    cdf1 = np.searchsorted(sorted_ref, points, side="right") / n1
    cdf2 = np.searchsorted(xs, points, side="right") / n2
    diffs = cdf1 - cdf2
    max_s = float(diffs.max())
    min_s = min(max(-float(diffs.min()), 0.0), 1.0)  # scipy clips the negative side to [0, 1]
    return min_s if min_s > max_s else max_s


def _complex_keys(columns: np.ndarray) -> np.ndarray:
    """(features, n) values -> complex keys `feature + i*value`; numpy orders complex numbers by (real, imag),
    so sorting or searching these keys works per feature in one call."""
    keys = np.empty(columns.shape, dtype=np.complex128)
    keys.real = np.arange(columns.shape[0])[:, np.newaxis]
    keys.imag = columns
    return keys


class SortedColumns:
    """Each row of a (features, n) array sorted, searchable for all features at once."""

    def __init__(self, sorted_rows: np.ndarray) -> None:
        self.values = sorted_rows
        self.n = sorted_rows.shape[1]
        self._keys = _complex_keys(sorted_rows).ravel()
        self._offsets = (np.arange(sorted_rows.shape[0]) * self.n)[:, np.newaxis]
        self._right_rank: np.ndarray | None = None

    def count(self, points: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        """Per feature, how many values are < (left) or <= (right) each point; points is (features, p)."""
        found = np.searchsorted(self._keys, _complex_keys(points).ravel(), side=side)
        return found.reshape(points.shape) - self._offsets

    @property
    def right_rank(self) -> np.ndarray:
        """count(values <= values[k]) for every k, per feature (computed once)."""
        if self._right_rank is None:
            self._right_rank = self.count(self.values, "right")
        return self._right_rank


def ks_statistics(ref: SortedColumns, x: np.ndarray) -> np.ndarray:
    """ks_statistic for every feature at once; `x` is (features, rows)."""
    xs = SortedColumns(np.sort(x, axis=1))
    n1, n2 = ref.n, xs.n
    before_x = ref.count(xs.values, "left")
    # Out-of-range candidates are clipped onto real reference points: extra candidates never change the
    # maximum, since every reference point belongs to scipy's evaluation set anyway.
    ends = np.broadcast_to(np.array([0, n1 - 1]), (x.shape[0], 2))
    index = np.clip(np.concatenate((before_x - 1, before_x, ends), axis=1), 0, n1 - 1)
    # The same CDF values scipy computes (counts divided by sizes), at the candidate reference points...
    at_ref = (
        np.take_along_axis(ref.right_rank, index, axis=1) / n1
        - xs.count(np.take_along_axis(ref.values, index, axis=1), "right") / n2
    )
    # ...and at the sample's own points.
    at_x = ref.count(xs.values, "right") / n1 - xs.right_rank / n2
    diffs = np.concatenate((at_ref, at_x), axis=1)
    max_s = diffs.max(axis=1)
    min_s = np.clip(-diffs.min(axis=1), 0, 1)
    return np.where(min_s > max_s, min_s, max_s)


def chi2_contingency_test(observed: np.ndarray) -> tuple[float, float]:
    """Pearson chi-squared with Yates' correction for one degree of freedom, as scipy's chi2_contingency."""
    observed = observed.astype(np.float64)
    total = observed.sum()
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / total
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    if dof == 0:
        return 0.0, 1.0
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(special.chdtrc(dof, statistic))


class TabularDriftTest:
    """Per-feature drift of a batch against a fixed reference sample."""

    def __init__(
        self,
        x_ref: np.ndarray,
        feature_names: Sequence[str],
        categorical: Iterable[int] = (),
        p_val: float = 0.05,
    ) -> None:
        x_ref = np.asarray(x_ref, dtype=np.float64)
        if x_ref.ndim != 2 or x_ref.shape[1] != len(feature_names):
            raise ValueError(f"reference has shape {x_ref.shape}, expected (rows, {len(feature_names)})")
        self.feature_names = list(feature_names)
        self.threshold = float(p_val)
        self.categorical = sorted(set(categorical))
        self.n_ref = x_ref.shape[0]
        self.numeric = [f for f in range(x_ref.shape[1]) if f not in self.categorical]
        self._ref = SortedColumns(np.sort(x_ref[:, self.numeric].T, axis=1))
        _ = self._ref.right_rank  # computed once here rather than on the first request
        self._ref_counts = {
            f: dict(zip(*np.unique(x_ref[:, f], return_counts=True), strict=True)) for f in self.categorical
        }
        self._chi2_cache: dict[tuple[int, tuple[tuple[float, int], ...]], tuple[float, float]] = {}

    def feature_scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """p-values and distances per feature, in feature order."""
        n2 = x.shape[0]
        p_value = np.empty(len(self.feature_names))
        distance = np.empty(len(self.feature_names))
        # scipy's asymptotic two-sample mode: kstwo with the rounded effective sample size
        m, n = sorted([float(self.n_ref), float(n2)], reverse=True)
        en = int(np.round(m * n / (m + n)))
        if self.numeric:
            statistics = ks_statistics(self._ref, x[:, self.numeric].T)
            for f, d in zip(self.numeric, statistics.tolist(), strict=True):
                distance[f] = d
                p_value[f] = ks_sf(d, en)
        for f in self.categorical:
            batch_counts = Counter(x[:, f].tolist())
            # Memoised like ks_sf: a small batch has few possible category counts.
            key = (f, tuple(sorted(batch_counts.items())))
            found = self._chi2_cache.get(key)
            if found is None:
                categories = sorted(set(self._ref_counts[f]) | set(batch_counts))
                table = np.array(
                    [
                        [self._ref_counts[f].get(c, 0) for c in categories],
                        [batch_counts.get(c, 0) for c in categories],
                    ]
                )
                found = chi2_contingency_test(table)
                if len(self._chi2_cache) >= CHI2_CACHE_SIZE:
                    self._chi2_cache.clear()
                self._chi2_cache[key] = found
            distance[f], p_value[f] = found
        return p_value, distance

    def test(self, x: np.ndarray) -> DriftReport:
        """Drift report for a batch (rows, features)."""
        p_value, distance = self.feature_scores(x)
        names = self.feature_names
        return DriftReport(
            threshold=self.threshold,
            p_value={name: float(p) for name, p in zip(names, p_value, strict=True)},
            distance={name: float(d) for name, d in zip(names, distance, strict=True)},
            is_drift={name: bool(p < self.threshold) for name, p in zip(names, p_value, strict=True)},
            rows=int(x.shape[0]),
        )
