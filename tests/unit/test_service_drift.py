"""The fast drift test equals scipy's ks_2samp / chi2_contingency and alibi-detect's TabularDrift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from modelops_service.drift import (
    SortedColumns,
    TabularDriftTest,
    chi2_contingency_test,
    ks_statistics,
)

NAMES = ["a", "b", "c", "cat"]


def reference(rng: np.random.Generator, rows: int = 800) -> np.ndarray:
    return np.column_stack(
        [
            rng.normal(size=rows),
            rng.exponential(size=rows),
            np.round(rng.normal(size=rows), 1),  # many ties
            rng.integers(0, 2, size=rows),
        ]
    )


@pytest.mark.parametrize("rows", [1, 2, 7, 150])
@pytest.mark.parametrize("seed", [0, 1])
def test_ks_statistic_equals_scipy(rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.round(rng.normal(size=500), 2)
    x = np.round(rng.normal(0.3, 1.2, size=rows), 2)
    statistic = ks_statistics(SortedColumns(np.sort(ref)[np.newaxis, :]), x[np.newaxis, :])[0]
    assert statistic == ks_2samp(ref, x, method="asymp").statistic


@pytest.mark.parametrize("table", [[[300, 500], [1, 1]], [[300, 500], [2, 0]], [[10, 20, 30], [1, 0, 4]]])
def test_chi2_equals_scipy(table: list[list[int]]) -> None:
    expected = chi2_contingency(np.array(table))
    statistic, p_value = chi2_contingency_test(np.array(table))
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-12)


@pytest.mark.parametrize("rows", [2, 30, 300])
def test_equals_alibi_tabular_drift(rows: int) -> None:
    from alibi_detect.cd import TabularDrift

    rng = np.random.default_rng(rows)
    ref = reference(rng)
    x = reference(rng, rows)
    x[:, 1] += 0.5  # drift in one feature
    ours = TabularDriftTest(ref, NAMES, categorical=[3], p_val=0.05).test(x)
    alibi = TabularDrift(ref, p_val=0.05, categories_per_feature={3: None}).predict(
        x, drift_type="feature", return_p_val=True, return_distance=True
    )["data"]
    np.testing.assert_allclose([ours.p_value[n] for n in NAMES], alibi["p_val"], atol=1e-6)
    np.testing.assert_allclose([ours.distance[n] for n in NAMES], alibi["distance"], atol=1e-6)
    assert [ours.is_drift[n] for n in NAMES] == [bool(f) for f in alibi["is_drift"]]


def test_flags_shifted_feature_only_in_large_batch() -> None:
    rng = np.random.default_rng(3)
    test = TabularDriftTest(reference(rng, 2000), NAMES, categorical=[3])
    x = reference(rng, 400)
    x[:, 0] += 1.0
    report = test.test(x)
    assert report.is_drift["a"]
    assert report.p_value["a"] < 1e-6
    assert report.any_drift
    assert report.rows == 400


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_ks_equals_scipy_per_feature(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.round(rng.normal(size=(3, 200)), seed % 3)  # rounding makes ties
    # batches of 1 to 78 rows, shifted until some fall outside the reference's range
    x = np.round(rng.normal(0.5 * (seed % 4), 1.0 + seed % 2, size=(3, 1 + 7 * seed)), seed % 3)
    statistics = ks_statistics(SortedColumns(np.sort(ref, axis=1)), x)
    assert statistics.tolist() == [ks_2samp(ref[f], x[f], method="asymp").statistic for f in range(3)]


BIG = float(np.finfo(np.float64).max)


@pytest.mark.parametrize(
    ("ref", "x"),
    [
        ([0, 0, 1, 1, 2], [2, 2, 3]),  # on the reference's largest value and beyond it
        ([0, 0, 1, 1, 2], [-1, 0]),  # below its smallest and on it
        ([5, 5, 5, 5], [5]),  # a constant feature, the sample on it
        ([5, 5, 5, 5], [4, 6]),
        ([-BIG, 0, BIG], [BIG, -BIG, 0]),  # the largest floats: "up to BIG" is "below +inf"
        ([-0.0, 0.0, 1e-300], [0.0, -0.0, 5e-324]),  # signed zeros and the smallest subnormal
    ],
)
def test_ks_statistic_at_the_edges_equals_scipy(ref: list[float], x: list[float]) -> None:
    """The search lands on a feature's end marker (+inf, share 1) beyond its largest value and never in
    the next feature's part: each feature here is next to one whose values are all smaller."""
    ref_a, x_a = np.array(ref, dtype=float), np.array(x, dtype=float)
    low_ref, low_x = np.full(len(ref), -1e9), np.full(len(x), -1e9)
    reference_rows = np.sort(np.stack([ref_a, low_ref, ref_a]), axis=1)
    statistics = ks_statistics(SortedColumns(reference_rows), np.stack([x_a, low_x, x_a]))
    expected = ks_2samp(ref_a, x_a, method="asymp").statistic
    assert statistics.tolist() == [expected, 0.0, expected]


def test_remembered_chi2_results_are_those_of_each_batch() -> None:
    """One test object over many small batches (the chi-squared results are memoised per batch counts):
    every categorical p-value still equals scipy's for that batch."""
    rng = np.random.default_rng(5)
    ref = reference(rng)
    test = TabularDriftTest(ref, NAMES, categorical=[3])
    for _ in range(60):
        batch = reference(rng, rows=int(rng.integers(1, 6)))
        batch[:, 3] = rng.integers(0, 3, size=len(batch))  # sometimes a category the reference lacks
        categories = sorted(set(ref[:, 3]) | set(batch[:, 3]))
        table = [[int((sample[:, 3] == c).sum()) for c in categories] for sample in (ref, batch)]
        expected = chi2_contingency(table).pvalue if len(categories) > 1 else 1.0
        assert test.test(batch).p_value["cat"] == pytest.approx(expected, rel=1e-12)
