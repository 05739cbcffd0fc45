"""Packed trees: the gradient boosting predictor equal to scikit-learn's to the last bit, the float32
thresholds of the isolation forest, and the joint walk of both."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

from modelops_service import boosting
from modelops_service.outliers import IsolationForestTest, PackedIsolationForest, float32_equivalent
from modelops_service.predictor import Predictor
from modelops_service.trees import JointWalk


def boosting_data(classes: int, rows: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, 5)), 2)  # ties on thresholds
    x[rng.random(x.shape) < 0.05] = np.nan  # the model learns a side for missing values
    score = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(scale=0.5, size=rows)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return x, y


@pytest.mark.parametrize("classes", [2, 4])
def test_packed_boosting_equals_predict_proba(classes: int) -> None:
    x, y = boosting_data(classes)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(x, y)
    packed = boosting.pack(model)
    assert packed is not None
    probe, _ = boosting_data(classes, rows=3000, seed=9)
    probe[:5] = boosting.check_rows(model, rows=5, seed=3)  # on thresholds and just above them
    assert np.array_equal(packed.predict_proba(probe), model.predict_proba(probe))
    assert np.array_equal(packed.predict_proba(probe[:1]), model.predict_proba(probe[:1]))


def test_models_that_cannot_be_packed_keep_their_own_predict() -> None:
    x, y = boosting_data(2)
    x = np.nan_to_num(x)
    x[:, 4] = np.random.default_rng(1).integers(0, 4, size=len(x))
    categorical = HistGradientBoostingClassifier(max_iter=20, categorical_features=[4]).fit(x, y)
    assert boosting.pack(categorical) is None  # a categorical split: not packed
    from sklearn.linear_model import LogisticRegression

    assert boosting.pack(LogisticRegression().fit(x, y)) is None
    predictor = Predictor(categorical, [f"f{i}" for i in range(5)])
    assert predictor.packed is None
    assert predictor.predict(x[:3]).probabilities == pytest.approx(
        categorical.predict_proba(x[:3]).max(axis=1)
    )


def test_a_packed_model_that_differs_from_the_model_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = boosting_data(2)
    model = HistGradientBoostingClassifier(max_iter=20).fit(x, y)
    real = boosting.PackedBoosting.predict_proba
    monkeypatch.setattr(boosting.PackedBoosting, "predict_proba", lambda self, rows: real(self, rows) * 0.999)
    assert boosting.pack(model) is None


def test_float32_equivalent_thresholds_compare_as_float32_copies() -> None:
    rng = np.random.default_rng(4)
    f32 = rng.normal(scale=rng.choice([1e-3, 1.0, 1e4]), size=4000).astype(np.float32)
    # thresholds as scikit-learn makes them (between two float32 values) and float32 values themselves
    t = np.concatenate([(f32[:-1].astype(np.float64) + f32[1:]) / 2, f32.astype(np.float64), [0.0, -0.0]])
    below, above = np.nextafter(f32, np.float32(-np.inf)), np.nextafter(f32, np.float32(np.inf))
    # inputs at, beside and between float32 values, including the midpoints where rounding ties
    mids = (f32.astype(np.float64) + above) / 2
    x = np.concatenate([f32, below, above, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    x = x.astype(np.float64)
    t_ = float32_equivalent(t)
    for threshold, equivalent in zip(t[::97], t_[::97], strict=True):
        assert np.array_equal(x.astype(np.float32) <= threshold, x <= equivalent)


def test_joint_walk_gives_each_ensemble_its_own_leaves() -> None:
    x, y = boosting_data(3)
    x = np.nan_to_num(x)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    forest = IsolationForest(n_estimators=25, random_state=0).fit(x[:, [3, 0, 2]])
    packed = boosting.pack(model)
    assert packed is not None
    columns = np.array([3, 0, 2])
    alone = IsolationForestTest(forest, threshold=0.0, columns=columns)
    joint_test = IsolationForestTest(forest, threshold=0.0, columns=columns)
    joint = JointWalk(packed.trees, joint_test.packed.trees)
    joint_test.packed.walk = lambda rows: joint.leaves(rows)[1]
    expected_proba = model.predict_proba(x[:50])
    packed.walk = lambda rows: joint.leaves(rows)[0]
    for rows in (x[:50], x[50:53], x[:50]):  # other rows in between: the kept leaves are not reused
        proba = packed.predict_proba(rows)
        scores = joint_test.test(rows).instance_score
        assert scores == alone.test(rows).instance_score
        np.testing.assert_allclose(scores, -forest.decision_function(rows[:, columns]), rtol=0, atol=1e-12)
        assert np.array_equal(proba, model.predict_proba(rows))
    assert np.array_equal(packed.predict_proba(x[:50]), expected_proba)
    assert isinstance(alone.packed, PackedIsolationForest)
