"""Fixtures of the operator's cluster tests: the CRD installed, an API client, the MLflow registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from mlflow import MlflowClient

from modelops_operator.crd import CRD_NAME, render_crd
from modelops_support.kubectl import kubectl


@pytest.fixture(scope="module")
def kubeconfig(cluster: Any) -> str:
    """The cluster's kubeconfig path, with the ModelDeployment CRD installed and established."""
    path = str(cluster.kubeconfig)
    kubectl(path, "apply", "--server-side", "-f", "-", stdin=render_crd())
    kubectl(path, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return path


@pytest.fixture(scope="module")
def api(cluster: Any) -> Iterator[client.ApiClient]:
    """A Kubernetes API client for the cluster."""
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def registry(mlflow_server: Any, trained_models: dict[str, Any]) -> MlflowClient:
    """The running MLflow server (restarted if a test stopped it) with the trained models registered."""
    mlflow_server.start()
    return MlflowClient(mlflow_server.tracking_uri)
