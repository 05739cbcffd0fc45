"""The packed isolation forest scores rows exactly as alibi-detect's IForest."""

from __future__ import annotations

import numpy as np
import pytest

from modelops_service.outliers import IsolationForestTest


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
