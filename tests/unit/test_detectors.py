"""Detector results on tiny synthetic data: shapes, keys, flags, persistence (real alibi-detect)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops_detectors import DriftDetector, DriftReference, DriftResult, OutlierDetector, as_matrix
from modelops_detectors.alibi import AlibiDriftDetector, AlibiOutlierDetector
from modelops_detectors.pyfunc import drift_frame, outlier_frame
from modelops_detectors.ranges import FeatureRanges

NAMES = ["a", "b", "flag"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"a": rng.normal(10, 2, 400), "b": rng.exponential(1.0, 400), "flag": rng.integers(0, 2, 400)}
    )


@pytest.fixture(scope="module")
def drift_detector(reference: pd.DataFrame) -> AlibiDriftDetector:
    return AlibiDriftDetector.fit(reference, NAMES, categorical=["flag"], p_val=0.05)


@pytest.fixture(scope="module")
def outlier_detector(reference: pd.DataFrame) -> AlibiOutlierDetector:
    return AlibiOutlierDetector.fit(reference, NAMES, n_estimators=50, seed=1)


def sample(n: int, seed: int, shift_a: float = 0.0, flag_p: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(10 + shift_a, 2, n),
            "b": rng.exponential(1.0, n),
            "flag": (rng.random(n) < flag_p).astype(int),
        }
    )


def test_detectors_satisfy_the_interface(drift_detector, outlier_detector) -> None:
    assert isinstance(drift_detector, DriftDetector)
    assert isinstance(outlier_detector, OutlierDetector)
    assert drift_detector.feature_names == outlier_detector.feature_names == NAMES


def test_drift_result_has_a_value_per_feature(drift_detector) -> None:
    result = drift_detector.predict(sample(200, seed=1))
    assert list(result.p_value) == list(result.distance) == list(result.is_drift) == NAMES
    assert all(0.0 <= p <= 1.0 for p in result.p_value.values())
    assert result.threshold == pytest.approx(0.05)
    assert result.n_rows == 200
    assert not result.is_batch_drift


def test_drift_on_a_shifted_continuous_feature(drift_detector) -> None:
    result = drift_detector.predict(sample(200, seed=2, shift_a=3.0))
    assert result.drifted_features == ["a"]
    assert result.distance["a"] > 0.4  # K-S statistic on a shift of 1.5 standard deviations


def test_drift_on_the_categorical_feature_uses_chi_squared(drift_detector) -> None:
    result = drift_detector.predict(sample(200, seed=3, flag_p=0.9))
    assert result.is_drift["flag"]
    assert not result.is_drift["a"]


def test_column_order_of_a_frame_does_not_matter(drift_detector) -> None:
    rows = sample(100, seed=4)
    assert drift_detector.predict(rows[["flag", "b", "a"]]) == drift_detector.predict(rows.to_numpy())


def test_batch_threshold_is_bonferroni() -> None:
    result = DriftResult(
        p_value={"x": 0.02, "y": 0.5},
        distance={"x": 0.3, "y": 0.1},
        is_drift={"x": True, "y": False},
        threshold=0.05,
        n_rows=10,
    )
    assert result.batch_threshold == pytest.approx(0.025)
    assert result.is_batch_drift
    assert result.to_dict()["is_batch_drift"] is True
    assert not DriftResult({"x": 0.03, "y": 0.5}, {}, {}, 0.05, 10).is_batch_drift


def test_reference_standardises_continuous_features_only(reference: pd.DataFrame, tmp_path: Path) -> None:
    ref = DriftReference.from_data(reference, NAMES, categorical=["flag"])
    z = ref.standardise(reference)
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1.0)
    np.testing.assert_array_equal(z[:, 2], reference["flag"])
    loaded = DriftReference.load(ref.save(tmp_path / "ref"))
    assert loaded.feature_names == NAMES
    assert loaded.categorical == ["flag"]
    np.testing.assert_array_equal(loaded.x_ref, ref.x_ref)
    np.testing.assert_array_equal(loaded.std, ref.std)


def test_outlier_result_has_a_value_per_row(outlier_detector) -> None:
    result = outlier_detector.predict(sample(50, seed=5))
    assert len(result.is_outlier) == len(result.instance_score) == len(result.out_of_range) == 50
    assert sum(result.is_outlier) < 15
    assert all(
        flag == (score > result.threshold)
        for flag, score in zip(result.is_outlier, result.instance_score, strict=True)
    )


def test_far_out_of_range_value_is_an_outlier(outlier_detector, reference: pd.DataFrame) -> None:
    typical = reference.median().to_frame().T
    rows = pd.concat([typical, typical.assign(b=500.0)], ignore_index=True)
    result = outlier_detector.predict(rows)
    assert result.is_outlier == [False, True]
    assert result.out_of_range == [[], ["b"]]


def test_outlier_detector_round_trips_with_joblib(outlier_detector, tmp_path: Path) -> None:
    loaded = AlibiOutlierDetector.load(outlier_detector.save(tmp_path / "od.joblib"))
    rows = sample(20, seed=6)
    assert loaded.predict(rows) == outlier_detector.predict(rows)


def test_saved_alibi_outlier_state_serves_without_alibi(outlier_detector, tmp_path: Path) -> None:
    """What the service loads (modelops_detectors.saved): the same results from scikit-learn alone."""
    from modelops_detectors.permissive import SklearnOutlierDetector
    from modelops_detectors.saved import load_outlier_state

    served = load_outlier_state(outlier_detector.save(tmp_path / "od.joblib"))
    assert type(served) is SklearnOutlierDetector
    rows = sample(20, seed=7)
    expected, got = outlier_detector.predict(rows), served.predict(rows)
    assert got.is_outlier == expected.is_outlier
    np.testing.assert_allclose(got.instance_score, expected.instance_score, atol=1e-12)
    assert got.threshold == expected.threshold


def test_feature_ranges_flag_nan_and_far_values() -> None:
    ranges = FeatureRanges.from_data(np.array([[0.0, 1.0], [10.0, 1.0]]), ["x", "y"], margin=0.5)
    assert ranges.violations(np.array([[14.0, 1.0], [16.0, 1.0], [np.nan, 1.0], [0.0, 2.0]])) == [
        [],
        ["x"],
        ["x"],
        ["y"],
    ]


def test_as_matrix_checks_columns_and_width() -> None:
    with pytest.raises(ValueError, match="missing feature columns"):
        as_matrix(pd.DataFrame({"a": [1.0]}), NAMES)
    with pytest.raises(ValueError, match="expected rows of 3 features"):
        as_matrix(np.zeros((2, 2)), NAMES)
    assert as_matrix(np.zeros(3), NAMES).shape == (1, 3)


def test_pyfunc_frames(drift_detector, outlier_detector) -> None:
    rows = sample(30, seed=7)
    drift = drift_frame(drift_detector.predict(rows))
    assert list(drift.columns) == ["feature", "p_value", "distance", "is_drift", "threshold"]
    assert list(drift["feature"]) == NAMES
    outliers = outlier_frame(outlier_detector.predict(rows))
    assert list(outliers.columns) == ["is_outlier", "instance_score", "threshold", "out_of_range"]
    assert len(outliers) == 30
