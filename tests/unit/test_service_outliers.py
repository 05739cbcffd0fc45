"""The packed isolation forest scores rows exactly as alibi-detect's IForest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from modelops_service.outliers import IsolationForestTest, PackedIsolationForest, average_path_length


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_scores_equal_alibi_iforest(max_features: float) -> None:
    from alibi_detect.od import IForest

    rng = np.random.default_rng(0)
    x_ref = rng.normal(size=(600, 5))
    x_ref[:, 4] = rng.integers(0, 2, size=600)
    detector = IForest(n_estimators=40, max_features=max_features)
    detector.isolationforest.set_params(random_state=1)
    detector.fit(x_ref)
    detector.infer_threshold(x_ref, threshold_perc=95)
    x = np.vstack([rng.normal(size=(50, 5)), rng.normal(6, 1, size=(5, 5))])

    expected = detector.predict(x, return_instance_score=True)["data"]
    report = IsolationForestTest(detector.isolationforest, detector.threshold).test(x)

    np.testing.assert_allclose(report.instance_score, expected["instance_score"], rtol=0, atol=1e-12)
    assert report.is_outlier == [bool(f) for f in expected["is_outlier"]]
    assert all(report.is_outlier[-5:])  # the far rows
    assert len(report.is_outlier) == len(x)


def test_range_guard_flags_values_beyond_the_reference() -> None:
    """A value far outside the fitted range is an outlier even where the forest scores it as ordinary."""
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(2)
    x_ref = rng.normal(size=(400, 3))
    forest = IsolationForest(n_estimators=30, random_state=0).fit(x_ref)
    lower, upper = x_ref.min(axis=0) - 1.0, x_ref.max(axis=0) + 1.0
    x = np.array([[0.0, 0.0, 0.0], [0.0, 50.0, 0.0], [0.0, 0.0, -50.0]])

    unguarded = IsolationForestTest(forest, threshold=10.0).test(x)  # threshold no score reaches
    guarded = IsolationForestTest(forest, threshold=10.0, lower=lower, upper=upper).test(x)

    assert unguarded.is_outlier == [False, False, False]
    assert guarded.is_outlier == [False, True, True]
    assert guarded.instance_score == unguarded.instance_score


def test_packed_scores_equal_scikit_learns_public_score_samples() -> None:
    """The owned path-length normalisation and the packed walk give IsolationForest's own scores."""

    rng = np.random.default_rng(5)
    fitted = rng.normal(size=(600, 6))
    for max_samples in (2, 37, 256):
        forest = IsolationForest(n_estimators=40, max_samples=max_samples, random_state=3).fit(fitted)
        probe = np.vstack([rng.normal(size=(200, 6)), rng.normal(loc=6.0, size=(20, 6))])
        expected = -forest.score_samples(probe) + forest.offset_  # alibi's IForest.score
        np.testing.assert_allclose(PackedIsolationForest(forest).score(probe), expected, rtol=1e-12)
    assert list(average_path_length(np.array([0, 1, 2]))) == [0.0, 0.0, 1.0]


def test_rows_on_the_thresholds_take_scikit_learns_branch() -> None:
    """The packed forest keeps float32 thresholds (the largest float32 at or below scikit-learn's float64
    one): rows whose values sit exactly on, just below and just above the thresholds score the same."""
    rng = np.random.default_rng(9)
    fitted = rng.normal(size=(500, 4)) * 1e3
    forest = IsolationForest(n_estimators=25, random_state=4).fit(fitted)
    split = [
        (columns[tree.tree_.feature[n]], tree.tree_.threshold[n])
        for tree, columns in zip(forest.estimators_, forest.estimators_features_, strict=True)
        for n in range(tree.tree_.node_count)
        if tree.tree_.feature[n] >= 0
    ][::7]
    on = np.float32([v for _, v in split])
    probe = np.tile(np.float32(rng.normal(size=4) * 1e3), (3 * len(split), 1))
    for i, (feature, _) in enumerate(split):
        for j, value in enumerate((np.nextafter(on[i], -np.inf), on[i], np.nextafter(on[i], np.inf))):
            probe[3 * i + j, feature] = value
    expected = -forest.score_samples(probe) + forest.offset_
    # one branch taken differently would move a score by about 1e-3 (one tree in 25)
    np.testing.assert_allclose(PackedIsolationForest(forest).score(probe), expected, rtol=1e-12)


@pytest.mark.parametrize("implementation", ["alibi", "permissive"])
def test_both_detector_implementations_offer_the_fast_path_with_their_own_results(
    implementation: str,
) -> None:
    from modelops_detectors.alibi import AlibiOutlierDetector
    from modelops_detectors.permissive import SklearnOutlierDetector
    from modelops_service.monitoring import build_outlier_test

    kind = AlibiOutlierDetector if implementation == "alibi" else SklearnOutlierDetector
    names = ["a", "b", "c"]
    rng = np.random.default_rng(11)
    detector = kind.fit(rng.normal(size=(500, 3)), names, n_estimators=30, seed=2)
    probe = np.vstack([rng.normal(size=(50, 3)), rng.normal(loc=4.0, size=(5, 3))])
    fast = build_outlier_test(detector, ["c", "a", "b"])  # the service's column order
    assert isinstance(fast, IsolationForestTest)  # the packed forest, not the detector's predict
    report = fast.test(probe[:, [2, 0, 1]])
    own = detector.predict(probe)
    assert report.is_outlier == own.is_outlier
    np.testing.assert_allclose(report.instance_score, own.instance_score, rtol=1e-9)
