"""`bentoml build` + `bentoml export` via the bake CLI: the generic bento and one with the models baked in."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_service.model_loader import LABEL_FILE
from modelops_support.local_service import LocalService

pytestmark = pytest.mark.component


def bake(output: Path, *args: str) -> dict[str, Any]:
    """Run the bake CLI with its own bento store under `output`; returns build.json."""
    command = [sys.executable, "-m", "modelops_service.bake", "--output", str(output)]
    command += ["--bentoml-home", str(output / "bentoml"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    record = json.loads((output / "build.json").read_text())
    assert json.loads(result.stdout) == record
    return record


def archive_names(record: dict[str, Any]) -> set[str]:
    with tarfile.open(record["archive"]) as archive:
        return {name.removeprefix("./") for name in archive.getnames()}


def dockerfile_text(record: dict[str, Any]) -> str:
    with tarfile.open(record["archive"]) as archive:
        member = next(m for m in archive.getmembers() if m.name.removeprefix("./") == record["dockerfile"])
        extracted = archive.extractfile(member)
        assert extracted is not None
        return extracted.read().decode()


def test_generic_bento_builds(tmp_path: Path) -> None:
    record = bake(tmp_path)
    names = archive_names(record)
    assert {"bento.yaml", "env/docker/Dockerfile", "src/modelops_service/service.py"} <= names
    assert "src/modelops_detectors/interface.py" in names
    assert "env/python/requirements.txt" in names
    assert not any(name.startswith("models/") and name.count("/") > 1 for name in names)
    assert record["models"] == {}
    assert "OMP_NUM_THREADS=1" in dockerfile_text(record)


def test_baked_bento_serves_its_own_models(
    trained_models: dict[str, Any], example_records: list[dict], tmp_path: Path
) -> None:
    record = bake(
        tmp_path,
        "--predictor",
        trained_models["prediction_model_artifact_uri"],
        "--drift",
        trained_models["drift_model_artifact_uri"],
        "--outlier",
        trained_models["outlier_model_artifact_uri"],
        "--tracking-uri",
        trained_models["tracking_uri"],
    )
    names = archive_names(record)
    for name in ("modelops-predictor", "modelops-drift", "modelops-outlier"):
        assert any(n.startswith(f"models/{name}/") and n.endswith("/MLmodel") for n in names), name
    expected = {
        role: f"{trained_models['models'][role]['name']}/{trained_models['models'][role]['version']}"
        for role in ("predictor", "drift", "outlier")
    }
    assert record["models"] == expected

    # No MODELOPS_*_URI and no tracking URI: the service must answer from the baked models alone.
    with LocalService(
        target=record["bento"], bentoml_home=tmp_path / "bentoml", workdir=tmp_path / "run"
    ) as service:
        response = httpx.post(f"{service.url}/predict", json=example_records, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["model_versions"] == expected


def test_serves_model_directories_baked_by_the_operator_build(
    service_models: dict[str, str], example_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    """As in an image from the operator's build Job: local model directories with their label files and
    no registry at all; the response names the registry versions the build recorded."""
    import mlflow

    mlflow.set_tracking_uri(service_models["tracking_uri"])
    uris, labels = {}, {}
    for role in ("predictor", "drift", "outlier"):
        path = mlflow.artifacts.download_artifacts(service_models[role], dst_path=str(tmp_path / role))
        labels[role] = service_models[role].removeprefix("models:/")
        (Path(path) / LABEL_FILE).write_text(labels[role])  # what the build Job's fetch script writes
        uris[role] = path

    with LocalService(
        uris["predictor"], uris["drift"], uris["outlier"], workdir=tmp_path / "service"
    ) as service:
        response = httpx.post(f"{service.url}/predict", json=example_records, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["model_versions"] == labels
