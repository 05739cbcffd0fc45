"""The scipy / scikit-learn detectors give what the alibi-detect ones give, through the same interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops_detectors import DriftDetector, DriftReference, OutlierDetector
from modelops_detectors.alibi import AlibiDriftDetector, AlibiOutlierDetector
from modelops_detectors.permissive import ScipyDriftDetector, SklearnOutlierDetector, chi_squared

NAMES = ["a", "b", "flag"]


def frame(n: int, seed: int, shift_a: float = 0.0, flag_p: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(10 + shift_a, 2, n),
            "b": rng.exponential(1.0, n),
            "flag": (rng.random(n) < flag_p).astype(int),
        }
    )


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    return DriftReference.from_data(frame(500, seed=0), NAMES, categorical=["flag"])


@pytest.mark.parametrize(
    ("rows", "seed", "shift_a", "flag_p"),
    [(200, 1, 0.0, 0.5), (40, 2, 2.0, 0.5), (100, 3, 0.0, 0.95), (2, 4, 0.0, 1.0)],
)
def test_drift_matches_alibi(
    reference: DriftReference, rows: int, seed: int, shift_a: float, flag_p: float
) -> None:
    batch = frame(rows, seed, shift_a, flag_p)
    ours, theirs = ScipyDriftDetector(reference).predict(batch), AlibiDriftDetector(reference).predict(batch)
    assert isinstance(ScipyDriftDetector(reference), DriftDetector)
    for name in NAMES:
        assert ours.p_value[name] == pytest.approx(theirs.p_value[name], rel=1e-6, abs=1e-12)
        assert ours.distance[name] == pytest.approx(theirs.distance[name], rel=1e-6)
    assert ours.is_drift == theirs.is_drift
    assert ours.threshold == theirs.threshold


def test_chi_squared_counts_categories_missing_from_one_side() -> None:
    statistic, p_value = chi_squared(np.array([0, 0, 1, 1] * 50), np.array([2] * 30))
    assert statistic > 100
    assert p_value < 1e-6


def test_outliers_match_alibi(tmp_path: Path) -> None:
    train = frame(400, seed=5)
    ours = SklearnOutlierDetector.fit(train, NAMES, n_estimators=50, seed=3)
    theirs = AlibiOutlierDetector.fit(train, NAMES, n_estimators=50, seed=3)
    assert isinstance(ours, OutlierDetector)
    batch = pd.concat([frame(30, seed=6), frame(1, seed=7).assign(b=1e3)], ignore_index=True)
    expected = theirs.predict(batch)
    result = SklearnOutlierDetector.load(ours.save(tmp_path / "forest.joblib")).predict(batch)
    assert result.threshold == pytest.approx(expected.threshold)
    np.testing.assert_allclose(result.instance_score, expected.instance_score, atol=1e-12)
    assert result.is_outlier == expected.is_outlier
    assert result.out_of_range[-1] == ["b"]
