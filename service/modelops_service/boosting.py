"""A fitted HistGradientBoostingClassifier packed into one node table (trees.PackedTrees): predict_proba
without scikit-learn's per-tree Python loop, equal to the model's own to the last bit.

scikit-learn sums the trees' leaf values iteration by iteration into the baseline and hands the sum to the
model's loss (sigmoid or softmax); this does the same sums in the same order and calls the same loss. It
reads the fitted model's private parts (`_predictors`, `_baseline_prediction`, `_loss`), so `pack` checks
the packed model against the model itself on rows made to fall on every split's threshold, on both sides
of it and on missing values, and returns None (the model's own predict_proba is used) unless every
probability is equal. Categorical splits and preprocessed inputs are left to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from modelops_service.trees import PackedTrees

logger = logging.getLogger(__name__)

CHECK_ROWS = 512  # rows of the load-time check (a few milliseconds through the model itself)


class PackedBoosting:
    """predict_proba of a HistGradientBoostingClassifier from its packed trees."""

    def __init__(self, model: Any) -> None:
        iterations = model._predictors  # [iteration][class] -> TreePredictor
        self.per_iteration = int(model.n_trees_per_iteration_)
        nodes = [predictor.nodes for trees in iterations for predictor in trees]
        self.trees = PackedTrees(
            features=[n["feature_idx"] for n in nodes],
            thresholds=[n["num_threshold"] for n in nodes],
            lefts=[n["left"].astype(np.intp) for n in nodes],
            rights=[n["right"].astype(np.intp) for n in nodes],
            leaves=[n["is_leaf"].astype(bool) for n in nodes],
            depth=max(int(n["depth"].max()) for n in nodes),
            missing_left=[n["missing_go_to_left"] for n in nodes],
        )
        self.walk: Callable[[np.ndarray], np.ndarray] = self.trees.leaves  # or a JointWalk's part
        self._value = self.trees.node_values([n["value"] for n in nodes]).astype(np.float64)
        self._baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, -1)
        self._loss = model._loss
        self.n_features = int(model.n_features_in_)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees per iteration): the baseline plus every iteration's leaf values, summed in
        scikit-learn's order (a reduction over the leading axis adds iteration after iteration)."""
        leaf_values = self._value[self.walk(x)]  # (trees, rows), iteration-major
        rows = x.shape[0]
        terms = np.empty((self.trees.size // self.per_iteration + 1, self.per_iteration, rows))
        terms[0] = self._baseline.T
        terms[1:] = leaf_values.reshape(-1, self.per_iteration, rows)
        return np.add.reduce(terms, axis=0).T

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._loss.predict_proba(np.asfortranarray(self.raw(np.asarray(x, np.float64)))))


def check_rows(model: Any, rows: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows whose values are, per feature, split thresholds of the model, the next float above one, or
    NaN: every comparison the trees make is tried on both sides and on its edge."""
    rng = np.random.default_rng(seed)
    n_features = int(model.n_features_in_)
    per_feature: list[list[float]] = [[np.nan, 0.0] for _ in range(n_features)]
    for trees in model._predictors:
        for predictor in trees:
            nodes = predictor.nodes[predictor.nodes["is_leaf"] == 0]
            splits = zip(nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(), strict=True)
            for feature, threshold in splits:
                per_feature[feature] += [threshold, float(np.nextafter(threshold, np.inf))]
    columns = [rng.choice(np.array(values), size=rows) for values in per_feature]
    return np.column_stack(columns).astype(np.float64)


def packable(model: Any) -> bool:
    """A fitted HistGradientBoostingClassifier with no categorical split and no input preprocessor."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(model) is not HistGradientBoostingClassifier or getattr(model, "_preprocessor", None) is not None:
        return False
    predictors = getattr(model, "_predictors", None)
    if not predictors or not hasattr(model, "_baseline_prediction") or not hasattr(model, "_loss"):
        return False
    return not any(p.nodes["is_categorical"].any() for trees in predictors for p in trees)


def pack(model: Any) -> PackedBoosting | None:
    """The packed model when it is equal to the model on the check rows, else None (logged)."""
    if not packable(model):
        return None
    try:
        packed = PackedBoosting(model)
        rows = check_rows(model)
        equal = np.array_equal(packed.predict_proba(rows), model.predict_proba(rows))
    except Exception:  # a model whose internals differ from what this reads: served as it is
        logger.warning("cannot pack %s; its own predict_proba is used", type(model).__name__, exc_info=True)
        return None
    if not equal:
        logger.warning(
            "packed %s differs from the model; its own predict_proba is used", type(model).__name__
        )
        return None
    return packed
