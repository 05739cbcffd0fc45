"""Feature drift as alibi-detect's TabularDrift computes it (K-S per numeric, chi-squared per categorical
column, no correction), made cheap per call: the reference is sorted once and a test counts the reference
values below and up to each batch value, the only places the empirical CDF difference can peak."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from scipy.stats import kstwo

from modelops_service.jsontext import to_json


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

    @functools.cached_property
    def json(self) -> str:
        """as_dict() as JSON text, encoded on first use and kept (the report is immutable)."""
        return to_json(self.as_dict())


CHI2_CACHE_SIZE = 4096  # distinct batch category counts remembered per categorical feature set


@functools.lru_cache(maxsize=65536)
def ks_sf(statistic: float, n: int) -> float:
    """Survival function of the two-sided one-sample K-S statistic for n (scipy's kstwo.sf).

    Memoised: for a small batch against a fixed reference the statistic takes few distinct values
    (|i/n_ref - j/n| for integers i, j), so requests of the same size keep hitting the cache."""
    return min(max(float(kstwo.sf(statistic, n)), 0.0), 1.0)


def _complex_keys(columns: np.ndarray) -> np.ndarray:
    """(features, n) values -> complex keys `feature + i*value`; numpy orders complex numbers by (real, imag),
    so sorting or searching these keys works per feature in one call."""
    keys = np.empty(columns.shape, dtype=np.complex128)
    keys.real = np.arange(columns.shape[0])[:, np.newaxis]
    keys.imag = columns
    return keys


class SortedColumns:
    """Each row of a (features, n) array sorted, searchable for all features at once.

    Searched in its distinct values, with the number of values before each: a reference of real data has
    few distinct values per feature (the wine reference: 2,494 distinct of 53,592 values, 40 KB of keys
    instead of 857 KB), so the searches touch a table that fits the CPU's caches."""

    def __init__(self, sorted_rows: np.ndarray) -> None:
        self.n = sorted_rows.shape[1]
        keys = _complex_keys(sorted_rows).ravel()
        first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        self.keys = keys[first]  # distinct, in order
        self._before = np.append(first, keys.size)  # values before each distinct one (and all of them)
        self.offsets = (np.arange(sorted_rows.shape[0]) * self.n)[:, np.newaxis]

    def count(self, keys: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        """Per feature, how many values are < (left) or <= (right) each point; `keys` are the points'
        complex keys (_complex_keys), the result is (features, points per feature)."""
        found = self._before.take(np.searchsorted(self.keys, keys, side=side))
        return found.reshape(self.offsets.shape[0], -1) - self.offsets


def ks_statistics(ref: SortedColumns, x: np.ndarray) -> np.ndarray:
    """Two-sided K-S distance of each feature of `x` (features, rows) from the reference, equal to scipy's
    ks_2samp (asymptotic mode).

    Both CDFs are right-continuous steps, so F_ref - F_x peaks just before a sample value (on the interval
    ending there F_x is flat and F_ref at its highest) and F_x - F_ref at a sample value: counts of
    reference values below and up to each sample value suffice. They are the counts scipy divides at the
    same points, so the statistics are equal to the last bit (tests/unit/test_service_drift.py).

    The sample's own counts need no search: with the values sorted, the j-th has at least j values below
    it and at most j + 1 up to it, equal at the first (below) and the last (up to) of equal values, where
    each side's difference is largest; the others' differences are smaller, so the maxima are scipy's.
    """
    n1, n2 = ref.n, x.shape[1]
    keys = _complex_keys(np.sort(x, axis=1)).ravel()
    below_ref, upto_ref = ref.count(keys, "left"), ref.count(keys, "right")
    share = np.arange(n2 + 1) / n2  # j / n2: the sample's share below the j-th value, and up to it
    max_s = (below_ref / n1 - share[:-1]).max(axis=1)
    min_s = np.clip((share[1:] - upto_ref / n1).max(axis=1), 0, 1)  # scipy clips this side to [0, 1]
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
        self._ref_counts = {
            f: dict(zip(*np.unique(x_ref[:, f], return_counts=True), strict=True)) for f in self.categorical
        }
        self._chi2_cache: dict[tuple[int, tuple[tuple[float, int], ...]], tuple[float, float]] = {}

    def feature_scores(self, x: np.ndarray) -> tuple[list[float], list[float]]:
        """p-values and distances per feature, in feature order."""
        n2 = x.shape[0]
        p_value = [0.0] * len(self.feature_names)
        distance = [0.0] * len(self.feature_names)
        # scipy's asymptotic two-sample mode: kstwo with the rounded effective sample size
        m, n = sorted([float(self.n_ref), float(n2)], reverse=True)
        en = round(m * n / (m + n))  # half to even, as numpy's round
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
            p_value=dict(zip(names, p_value, strict=True)),
            distance=dict(zip(names, distance, strict=True)),
            is_drift={name: p < self.threshold for name, p in zip(names, p_value, strict=True)},
            rows=int(x.shape[0]),
        )
