"""Hyperparameter search: an optuna TPE search over HistGradientBoosting, one nested MLflow run per trial."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

log = logging.getLogger(__name__)

# What skops must trust to serialise the model (mlflow.sklearn uses skops by default).
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def suggest_params(trial: optuna.Trial) -> dict[str, Any]:
    """The search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
        "max_iter": trial.suggest_int("max_iter", 50, 200, step=25),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 60, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.5, 1.0),
    }


def build_classifier(params: dict[str, Any], seed: int) -> HistGradientBoostingClassifier:
    """A classifier for one set of parameters (no early stopping: every trial sees the same data)."""
    return HistGradientBoostingClassifier(**params, early_stopping=False, random_state=seed)


def score_predictions(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """ROC AUC from probabilities; accuracy, precision and recall at `threshold`."""
    predicted = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
    }


@dataclass
class SearchResult:
    """The best trial's fitted model, parameters and metrics, plus each trial's ROC AUC."""

    model: HistGradientBoostingClassifier | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    trial_run_id: str = ""
    roc_auc_by_trial: list[float] = field(default_factory=list)


def run_search(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    trials: int,
    seed: int,
    on_trial: Callable[[int, dict[str, float], SearchResult], None] | None = None,
) -> SearchResult:
    """Run `trials` TPE trials inside the active MLflow run; each trial is a nested run."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parent = mlflow.active_run()
    experiment_id = parent.info.experiment_id if parent is not None else None
    result = SearchResult()

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"trial-{trial.number:03d}", nested=True
        ) as run:
            model = build_classifier(params, seed).fit(X_train, y_train)
            metrics = score_predictions(y_test.to_numpy(), model.predict_proba(X_test)[:, 1])
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
        result.roc_auc_by_trial.append(metrics["roc_auc"])
        if metrics["roc_auc"] > result.metrics.get("roc_auc", -1.0):
            result.model, result.params, result.metrics = model, params, metrics
            result.trial_run_id = run.info.run_id
        if on_trial is not None:
            on_trial(trial.number, metrics, result)
        return metrics["roc_auc"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return result
