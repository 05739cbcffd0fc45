"""The operator from the image built by the root Dockerfile: non-root, live, and reconciling for real.

The image is built with buildah (tools/image/build.sh; skipped without buildah) and its ENTRYPOINT runs
under `buildah run` against the project's control plane and a real MLflow server on the host network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from mlflow import MlflowClient

from tests.fixtures.image import ImageOperator
from tests.fixtures.operator import apply, condition, manifest, new_versions, wait_condition

pytestmark = pytest.mark.cluster


@pytest.fixture
def image_operator(
    operator_image: str, kubeconfig: str, namespace: str, tmp_path: Any
) -> Iterator[ImageOperator]:
    """The image's operator watching only the test's namespace."""
    with ImageOperator(operator_image, kubeconfig, tmp_path / "operator.log", namespaces=[namespace]) as op:
        yield op


def test_image_runs_the_operator_as_its_non_root_user(image_operator: ImageOperator) -> None:
    assert image_operator.exec("id", "-u").strip() == "10001"
    assert image_operator.alive()
    # The ENTRYPOINT's --log-format=json: one JSON object per line.
    first_line = image_operator.log_path.read_text().splitlines()[0]
    assert json.loads(first_line)["message"]
    # The operator dependency set only: no serving stack in this image.
    packages = image_operator.exec("pip", "list", "--format=freeze")
    assert "kopf==" in packages
    assert "bentoml==" not in packages


def test_sample_becomes_ready_with_the_operator_from_the_image(
    image_operator: ImageOperator,
    kubeconfig: str,
    api: client.ApiClient,
    namespace: str,
    registry: MlflowClient,
    trained_models: dict[str, Any],
) -> None:
    versions = new_versions(registry, trained_models)
    name = "wine-image"
    doc = manifest("wine-quality-staging.yaml", name, registry.tracking_uri, versions)
    result = apply(kubeconfig, namespace, doc)
    assert result.returncode == 0, result.stderr

    obj = wait_condition(api, namespace, name, "Ready")
    assert obj["status"]["models"]["predictor"]["version"] == versions["predictor"]
    assert obj["status"]["trainingRunId"] == trained_models["training_run_id"]
    assert obj["status"]["readyReplicas"] == 1
    wait_condition(api, namespace, name, "RegistrySynced")
    assert "staging" in registry.get_model_version("wine_quality", versions["predictor"]).aliases


def test_unreachable_registry_is_reported_by_the_operator_from_the_image(
    image_operator: ImageOperator, kubeconfig: str, api: client.ApiClient, namespace: str
) -> None:
    name = "wine-unreachable"
    doc = manifest("wine-quality-staging.yaml", name, "http://127.0.0.1:1", {})
    assert apply(kubeconfig, namespace, doc).returncode == 0
    obj = wait_condition(api, namespace, name, "Reconciling", timeout=60)
    assert condition(obj, "Reconciling")["reason"] == "RegistryUnreachable"
    assert condition(obj, "Ready")["status"] == "False"
