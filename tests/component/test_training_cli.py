"""The training CLI with its defaults (sqlite registry under the state dir), and the local MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from modelops_support.mlflow_server import LocalMlflowServer
from modelops_training.pipeline import EXPERIMENT, RegistryStoreError, ensure_experiment, tracking

pytestmark = pytest.mark.component


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelops_training", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def test_cli_registers_into_the_default_state_dir(wine_data_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "MODELOPS_STATE_DIR": str(state), "MODELOPS_DATA_DIR": str(wine_data_dir)}
    done = run_cli("--trials", "2", "--no-progress", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((state / "registered_models.json").read_text())
    assert record["tracking_uri"] == f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
    assert record["prediction_model_artifact_uri"] == "models:/wine_quality/1"
    assert record["drift_model_artifact_uri"] == "models:/wine_quality_drift/1"
    assert record["outlier_model_artifact_uri"] == "models:/wine_quality_outliers/1"
    assert record["trials"] == 2
    assert "models:/wine_quality_outliers/1" in done.stdout
    assert "roc_auc" in done.stdout
    # artifacts live beside the database, where `make mlflow-ui` serves them from
    assert any((state / "mlflow" / "artifacts").rglob("MLmodel"))
    assert not (tmp_path / "mlruns").exists()  # nothing lands in the working directory
    client = MlflowClient(record["tracking_uri"])
    assert (
        client.get_model_version("wine_quality", "1").tags["modelops.training_run_id"]
        == record["training_run_id"]
    )


def test_cli_explains_missing_data(tmp_path: Path) -> None:
    env = {**os.environ, "MODELOPS_STATE_DIR": str(tmp_path / "state")}
    done = run_cli("--data-dir", str(tmp_path / "nowhere"), "--trials", "1", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "winequality-red.csv: file not found" in done.stderr
    assert not (tmp_path / "state" / "registered_models.json").exists()


def test_server_restarts_on_the_same_port_and_store(
    mlflow_server: LocalMlflowServer, trained_models: dict[str, Any]
) -> None:
    port, uri = mlflow_server.port, mlflow_server.tracking_uri
    assert uri == f"http://127.0.0.1:{port}" == trained_models["tracking_uri"]
    mlflow_server.stop()
    try:
        assert not mlflow_server.running
        assert not mlflow_server.healthy()
    finally:
        mlflow_server.start()  # other tests share this server: always bring it back
    assert mlflow_server.port == port
    assert mlflow_server.healthy()
    predictor = trained_models["models"]["predictor"]
    version = MlflowClient(uri).get_model_version(predictor["name"], predictor["version"])
    assert version.tags["modelops.training_run_id"] == trained_models["training_run_id"]
    assert "Shutting down" in mlflow_server.log_tail(400)


def test_sqlite_run_refuses_an_experiment_made_through_the_server(
    mlflow_server: LocalMlflowServer, trained_models: dict[str, Any]
) -> None:
    # trained_models created the experiment through the server: its artifacts live behind mlflow-artifacts:/
    sqlite_uri = f"sqlite:///{mlflow_server.root_dir / 'mlflow.db'}"
    with tracking(sqlite_uri), pytest.raises(RegistryStoreError, match=r"--tracking-uri http://"):
        ensure_experiment(EXPERIMENT, sqlite_uri)
