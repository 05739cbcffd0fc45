"""Train the wine-quality model and its detectors, log everything to MLflow and register the three models."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from modelops_contract import TRAINING_RUN_TAG
from modelops_detectors.implementations import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS, load_class
from modelops_detectors.pyfunc import log_drift_model, log_outlier_model, pinned_requirements, quiet_signature
from modelops_detectors.reference import DriftReference
from modelops_training.data import CONTINUOUS_FEATURES, FEATURES, LABEL, load_wine
from modelops_training.registration import (
    DRIFT,
    FINGERPRINT_TAG,
    MODEL_NAMES,
    OUTLIER,
    PREDICTOR,
    ModelVersion,
    Registered,
    tag_versions,
    write_record,
)
from modelops_training.search import SKOPS_TRUSTED_TYPES, SearchResult, run_search
from modelops_training.state import sqlite_artifact_root

log = logging.getLogger(__name__)

EXPERIMENT = "wine_quality"
DEFAULT_TRIALS = 32
DEFAULT_SEED = 42
TEST_SIZE = 0.25
CATEGORICAL_FEATURES = [name for name in FEATURES if name not in CONTINUOUS_FEATURES]  # is_red
PREDICTOR_REQUIREMENTS = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")


def split_data(
    frame: pd.DataFrame, seed: int, test_size: float = TEST_SIZE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stratified train / held-out split that training, detectors and tests share."""
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[LABEL])
    return train, test


@contextlib.contextmanager
def tracking(uri: str) -> Iterator[None]:
    """Point the MLflow fluent API at `uri` for the duration, then restore the previous URI."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


class RegistryStoreError(RuntimeError):
    """The tracking store cannot take this run as it is configured."""


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """The experiment's id, creating it (for a sqlite store: with artifacts beside the database)."""
    experiment = mlflow.get_experiment_by_name(name)
    root = sqlite_artifact_root(tracking_uri)
    if experiment is not None:
        if root is not None and experiment.artifact_location.startswith("mlflow-artifacts:"):
            # Created through `mlflow server` (e.g. by the demo): only a server can store its artifacts.
            raise RegistryStoreError(
                f"experiment {name!r} in {tracking_uri} keeps its artifacts behind an MLflow server "
                f"({experiment.artifact_location}); start one on this store (make mlflow-ui) and pass "
                "--tracking-uri http://127.0.0.1:5000"
            )
        return str(experiment.experiment_id)
    location = (root / name).as_uri() if root is not None else None
    return str(mlflow.create_experiment(name, artifact_location=location))


def default_threads() -> int:
    """OpenMP threads for training: $OMP_NUM_THREADS if set, else 1.

    On a small shared machine, HistGradientBoosting with 2 OpenMP threads took 27 s for a fit that one
    thread does in 0.65 s (spin-waiting threads competing for busy cores); one thread is the safe default.
    """
    return int(os.environ.get("OMP_NUM_THREADS") or 1)


def train_and_register(
    tracking_uri: str,
    data_dir: Path | str | None = None,
    trials: int = DEFAULT_TRIALS,
    seed: int = DEFAULT_SEED,
    output: Path | None = None,
    progress: bool = False,
    threads: int | None = None,
    experiment: str = EXPERIMENT,
    detectors: str = DEFAULT_IMPLEMENTATION,
) -> Registered:
    """Search, fit the detectors, register wine_quality(_drift, _outliers) with provenance tags.

    `detectors` names the detector implementation: "alibi" (alibi-detect, BSL 1.1) or "permissive"
    (scipy and scikit-learn only); see modelops_detectors.implementations.
    """
    started = time.monotonic()
    data = load_wine(data_dir)
    train, test = split_data(data.frame, seed)
    X_train, X_test = train[FEATURES], test[FEATURES]
    example = X_test.head(5)

    with tracking(tracking_uri), threadpool_limits(limits=threads or default_threads(), user_api="openmp"):
        experiment_id = ensure_experiment(experiment, tracking_uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name="train-wine-quality") as run:
            run_id = run.info.run_id
            mlflow.set_tags({FINGERPRINT_TAG: data.fingerprint, "modelops.data_source": data.source})
            mlflow.log_params(
                {
                    "trials": trials,
                    "seed": seed,
                    "detectors": detectors,
                    "test_size": TEST_SIZE,
                    "n_train": len(train),
                    "n_test": len(test),
                }
            )
            with tqdm(total=trials, desc="trials", unit="trial", disable=not progress) as bar:

                def on_trial(number: int, metrics: dict[str, float], best: SearchResult) -> None:
                    bar.set_postfix(
                        roc_auc=f"{metrics['roc_auc']:.4f}", best=f"{best.metrics['roc_auc']:.4f}"
                    )
                    bar.update()

                best = run_search(X_train, train[LABEL], X_test, test[LABEL], trials, seed, on_trial)
            mlflow.log_params({f"best_{key}": value for key, value in best.params.items()})
            mlflow.log_metrics({f"best_{key}": value for key, value in best.metrics.items()})
            mlflow.set_tag("modelops.best_trial_run_id", best.trial_run_id)

            models = register_models(best, X_train, example, seed, detectors)
        tag_versions(
            MlflowClient(tracking_uri), models, {TRAINING_RUN_TAG: run_id, FINGERPRINT_TAG: data.fingerprint}
        )

    registered = Registered(
        tracking_uri=tracking_uri,
        training_run_id=run_id,
        data_fingerprint=data.fingerprint,
        models=models,
        metrics=best.metrics,
        params=best.params,
        trials=trials,
        seed=seed,
        test_size=TEST_SIZE,
        detectors=detectors,
        duration_s=time.monotonic() - started,
    )
    if output is not None:
        write_record(registered, output)
    return registered


def fit_drift_detector(X_train: pd.DataFrame, implementation: str = DEFAULT_IMPLEMENTATION) -> Any:
    """The drift detector on the training rows: is_red categorical, p-value cut 0.05."""
    reference = DriftReference.from_data(X_train, FEATURES, categorical=CATEGORICAL_FEATURES, p_val=0.05)
    return load_class(IMPLEMENTATIONS[implementation].drift)(reference)


def register_models(
    best: SearchResult,
    X_train: pd.DataFrame,
    example: pd.DataFrame,
    seed: int,
    detectors: str = DEFAULT_IMPLEMENTATION,
) -> dict[str, ModelVersion]:
    """Log and register the best classifier and the detectors fitted on the training features."""
    assert best.model is not None, "the search ran no trial"
    predictor = mlflow.sklearn.log_model(
        best.model,
        name="model",
        signature=quiet_signature(example, best.model.predict(example)),
        input_example=example.head(2),
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        pip_requirements=pinned_requirements(PREDICTOR_REQUIREMENTS),
        registered_model_name=MODEL_NAMES[PREDICTOR],
    )
    drift = log_drift_model(
        fit_drift_detector(X_train, detectors),
        example,
        name="drift_detector",
        registered_model_name=MODEL_NAMES[DRIFT],
    )
    outlier = log_outlier_model(
        load_class(IMPLEMENTATIONS[detectors].outlier).fit(X_train, FEATURES, seed=seed),
        example,
        name="outlier_detector",
        registered_model_name=MODEL_NAMES[OUTLIER],
    )
    return {
        role: ModelVersion(MODEL_NAMES[role], str(info.registered_model_version))
        for role, info in ((PREDICTOR, predictor), (DRIFT, drift), (OUTLIER, outlier))
    }
