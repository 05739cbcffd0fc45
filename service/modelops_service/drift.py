"""Feature drift as alibi-detect's TabularDrift computes it (K-S per numeric, chi-squared per categorical
column, no correction), made cheap per call: the reference is sorted once and a test counts the reference
values below and up to each batch value, the only places the empirical CDF difference can peak."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@functools.lru_cache(maxsize=64)  # by batch size, bounded by the row limits
def effective_size(n_ref: int, n: int) -> int:
    """scipy's asymptotic two-sample mode: kstwo with the rounded effective sample size m*n/(m+n) (half
    to even, as numpy's round)."""
    m, n2 = float(n_ref), float(n)
    return round(m * n2 / (m + n2))


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

    Kept as its distinct values, each with the share of its feature's values below it (a reference of real
    data has few distinct values per feature: the wine reference 2,494 of 53,592, 40 KB of keys instead of
    857 KB, a table that stays in the CPU's caches), and an end marker (feature, +inf) per feature holding
    1.0. A search for a finite value of feature f lands in f's own part of the table (at worst on its end
    marker), so one search and one `take` give every feature's shares."""

    def __init__(self, sorted_rows: np.ndarray) -> None:
        features, self.n = sorted_rows.shape
        ends = np.full((features, 1), np.inf)
        keys = _complex_keys(np.concatenate([sorted_rows, ends], axis=1)).ravel()
        first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        self.keys = keys[first]  # distinct, in order
        # the first of equal values in a sorted row has as many of its feature's values before it as its
        # place in the row; the end marker's place is n (all of them)
        self.shares = (first % (self.n + 1)) / self.n
        self.features = np.arange(features)[:, np.newaxis]

    def shares_before(self, keys: np.ndarray) -> np.ndarray:
        """For each point's complex key (_complex_keys), the share of its feature's values below it."""
        return self.shares.take(np.searchsorted(self.keys, keys))


@functools.lru_cache(maxsize=64)  # one (2, 1, n) array per batch size seen: bounded by the row limits
def _sample_shares(n: int) -> np.ndarray:
    """[j / n] and [(j + 1) / n] for j < n: a sorted sample's share below its j-th value and up to it."""
    share = np.arange(n + 1) / n
    return np.stack([share[:-1], share[1:]])[:, np.newaxis, :]


_SIDES = np.array([1.0, -1.0])[:, np.newaxis, np.newaxis]


def ks_statistics(ref: SortedColumns, x: np.ndarray) -> np.ndarray:
    """Two-sided K-S distance of each feature of `x` (features, rows; finite values) from the reference,
    equal to scipy's ks_2samp (asymptotic mode).

    Both CDFs are right-continuous steps, so F_ref - F_x peaks just before a sample value (on the interval
    ending there F_x is flat and F_ref at its highest) and F_x - F_ref at a sample value: the reference's
    shares below and up to each sample value suffice. They are the shares scipy subtracts at the same
    points, so the statistics are equal to the last bit (tests/unit/test_service_drift.py). "Up to v" is
    "below the next float after v", so both sides are one search.

    The sample's own shares need no search: with the values sorted, the j-th has at least j values below
    it and at most j + 1 up to it, equal at the first (below) and the last (up to) of equal values, where
    each side's difference is largest; the others' differences are smaller, so the maxima are scipy's.
    The side scipy clips to [0, 1] needs no clip here: it never exceeds 1, and the other side is at least
    0 (its first value's share below, minus 0).
    """
    values = np.sort(x, axis=1)
    keys = np.empty((2, *values.shape), dtype=np.complex128)
    keys.real = ref.features
    keys.imag[0] = values
    keys.imag[1] = np.nextafter(values, np.inf)
    differences = ref.shares_before(keys)
    differences -= _sample_shares(values.shape[1])  # [F_ref - j/n below, F_ref - (j+1)/n up to]
    differences *= _SIDES  # the second side's sign turned: (j+1)/n - F_ref up to each value (exact)
    return differences.max(axis=(0, 2))


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
        # Every column searched, categorical ones too (their K-S result is dropped for the chi-squared
        # test's): one search for all, and no per-call selection of the numeric columns.
        self._ref = SortedColumns(np.sort(x_ref.T, axis=1))
        self._ref_counts = {
            f: dict(zip(*np.unique(x_ref[:, f], return_counts=True), strict=True)) for f in self.categorical
        }
        self._chi2_cache: dict[tuple[int, tuple[tuple[float, int], ...]], tuple[float, float]] = {}

    def feature_scores(self, x: np.ndarray) -> tuple[list[float], list[float]]:
        """p-values and distances per feature, in feature order."""
        distance = ks_statistics(self._ref, x.T).tolist()
        en = effective_size(self.n_ref, x.shape[0])
        p_value = [ks_sf(d, en) for d in distance]  # the categorical ones are replaced below
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
