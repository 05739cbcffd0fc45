"""Staged promotion end to end: a real Argo CD syncs deploy/staging and deploy/production from a Git
repository on loopback into the project's control plane, the real `kopf run` verifies and gates, the
registry is a real MLflow server, and `modelops promote` writes the commit a reviewer merges.

kwok runs the pods (nothing listens in them), so the drift windows are a real `bentoml serve` on loopback
that both environments' pods report through MODELOPS_METRICS_URL_TEMPLATE (as in test_operator_drift.py),
and "the production pods keep serving" is shown by their Deployment and pods being left exactly as they
were; tests/cluster/test_real_node.py shows traffic through real pods during rollouts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from mlflow import MlflowClient

from modelops_support.gitops import (
    ENVIRONMENTS,
    DeployRepo,
    git,
    start_applications,
    verification_record,
)
from modelops_support.local_argocd import NAMESPACE, LocalArgoCD, LocalGitServer
from modelops_support.local_operator import LocalOperator
from modelops_support.local_service import LocalService
from modelops_support.waiting import observe, wait_for
from tests.fixtures.data import shifted, wine_records
from tests.fixtures.operator import get_mdep, kubectl, new_versions
from tests.fixtures.service import WINDOW_ENV, serving

pytestmark = pytest.mark.cluster

SOAK_SECONDS = 6
TAG = "modelops.verified.staging"


@pytest.fixture(scope="module")
def drift_service(
    service_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalService]:
    """The drift windows every pod reports (a fresh 200-row window)."""
    yield from serving(service_models, tmp_path_factory.mktemp("drift-service"), WINDOW_ENV)


@pytest.fixture(scope="module")
def operator(
    kubeconfig: str, drift_service: LocalService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalOperator]:
    env = {
        "MODELOPS_VERIFICATION_CHECK_SECONDS": "1",
        "MODELOPS_GATE_POLL_SECONDS": "2",
        "MODELOPS_DRIFT_POLL_SECONDS": "1",
        "MODELOPS_METRICS_URL_TEMPLATE": f"{drift_service.url}/metrics",
        "MODELOPS_CLUSTER_NAME": "local-staging",
        # The operator's verification policy: staging may be recorded here, after soaks of >= 1 s.
        "MODELOPS_VERIFICATION_NAMESPACES": "staging=*",
        "MODELOPS_VERIFICATION_MIN_SOAK_SECONDS": "1",
    }
    with LocalOperator(kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", env=env) as op:
        yield op


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGitServer]:
    root = tmp_path_factory.mktemp("git")
    with LocalGitServer(root / "repos", root / "git-daemon.log") as server:
        yield server


@pytest.fixture(scope="module")
def argocd(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArgoCD]:
    with LocalArgoCD(kubeconfig, tmp_path_factory.mktemp("argocd")) as argo:
        yield argo


@dataclass
class Pipeline:
    """One repository and the two environments' Applications and namespaces."""

    repo: DeployRepo
    kubeconfig: str
    api: client.ApiClient
    argo: LocalArgoCD
    registry: MlflowClient
    namespaces: dict[str, str]

    def resource(self, env: str) -> dict[str, Any]:
        return get_mdep(self.api, self.namespaces[env], "wine-quality")

    def pin(self, env: str, versions: dict[str, str], message: str) -> None:
        """A commit pinning env's versions, pushed; its Application told at once, as a webhook would."""
        self.repo.pin(env, versions, message)
        self.argo.refresh(self.app(env))

    def merge(self, branch: str) -> None:
        """The reviewer's merge into main, pushed; production's Application told at once."""
        self.repo.merge(branch)
        self.argo.refresh(self.app("production"))

    def condition(self, env: str, ctype: str) -> dict[str, Any]:
        status = self.resource(env).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})

    def app(self, env: str) -> str:
        return f"wine-quality-{env}-{self.namespaces[env]}"

    def health(self, env: str) -> tuple[str, str, str]:
        return self.argo.health(self.app(env))

    def wait_health(
        self, env: str, wanted: str, timeout: float = 120, mentions: str = ""
    ) -> tuple[str, str, str]:
        def check() -> tuple[str, str, str] | None:
            found = self.health(env)
            return found if found[0] == wanted and found[2] == "Synced" and mentions in found[1] else None

        try:
            return wait_for(check, timeout, 0.5, f"{self.app(env)} {wanted}")
        except TimeoutError as e:
            raise AssertionError(f"{e}: now {self.health(env)}; {self.resource_status(env)}") from e

    def resource_status(self, env: str) -> Any:
        try:
            return (self.resource(env).get("status") or {}).get("conditions")
        except client.exceptions.ApiException as e:
            return f"no resource ({e.status})"

    def served_predictor(self, env: str) -> str:
        deployment = client.AppsV1Api(self.api).read_namespaced_deployment(
            "wine-quality", self.namespaces[env]
        )
        env_vars = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
        return env_vars["MODELOPS_PREDICTOR_URI"]

    def record(self, version: str) -> dict[str, Any] | None:
        return verification_record(self.registry.get_model_version("wine_quality", version).tags)

    def wait_record(self, version: str, timeout: float = 90) -> dict[str, Any]:
        """Staging's record of this predictor version, once all three versions carry it."""
        try:
            return wait_for(lambda: self.record(version), timeout, 0.5, f"staging's record of {version}")
        except TimeoutError as e:
            status = self.resource("staging").get("status") or {}
            raise AssertionError(f"{e}; staging: {status.get('conditions')}, {status.get('drift')}") from e

    def stage(self, version: str) -> str:
        return self.registry.get_model_version("wine_quality", version).current_stage


@pytest.fixture
def pipeline(
    kubeconfig: str,
    api: client.ApiClient,
    argocd: LocalArgoCD,
    git_server: LocalGitServer,
    operator: LocalOperator,
    registry: MlflowClient,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    suffix = uuid.uuid4().hex[:6]
    repo = DeployRepo.create(
        git_server, f"deploy-{suffix}", tmp_path / "deploy", registry.tracking_uri, SOAK_SECONDS
    )
    namespaces = {env: f"{env[:4]}-{suffix}" for env in ("staging", "production")}
    made = Pipeline(repo, kubeconfig, api, argocd, registry, namespaces)
    try:
        yield made
    finally:
        for env, namespace in namespaces.items():
            kubectl(
                kubeconfig,
                "delete",
                "application",
                made.app(env),
                "-n",
                NAMESPACE,
                "--ignore-not-found",
                check=False,
            )
            kubectl(
                kubeconfig,
                "delete",
                "namespace",
                namespace,
                "--ignore-not-found",
                "--wait=false",
                check=False,
            )


def predict(service: LocalService, records: list[dict[str, Any]]) -> None:
    httpx.post(f"{service.url}/predict", json=records, timeout=60).raise_for_status()


def test_staging_verifies_production_is_gated_and_promote_ships_it(
    pipeline: Pipeline,
    git_server: LocalGitServer,
    drift_service: LocalService,
    registry: MlflowClient,
    trained_models: dict[str, Any],
    wine_data_dir: Path,
) -> None:

    # -- 1. Staging syncs from Git and becomes Healthy; drift in the windows holds the record back. --------
    v1 = new_versions(registry, trained_models)
    predict(drift_service, shifted(wine_records(wine_data_dir, 200, seed=41), "alcohol", 3.0))
    pipeline.repo.pin("staging", v1, "Staging: wine_quality " + v1["predictor"])
    start_applications(
        pipeline.argo, pipeline.repo, {e: pipeline.app(e) for e in ENVIRONMENTS}, pipeline.namespaces
    )
    pipeline.wait_health("staging", "Healthy")
    wait_for(
        lambda: pipeline.condition("staging", "Verified").get("reason") == "DriftDuringSoak",
        60,
        0.3,
        "soak held by drift",
    )
    # Longer than the soak: still no record while the windows drift.
    records = observe(lambda: pipeline.record(v1["predictor"]), SOAK_SECONDS + 2)
    assert all(record is None for record in records)
    assert pipeline.condition("staging", "Verified")["reason"] == "DriftDuringSoak"
    clean_from = time.time()
    predict(drift_service, wine_records(wine_data_dir, 200, seed=42))  # the window is clean again
    record = pipeline.wait_record(v1["predictor"])
    assert record["resource"] == f"{pipeline.namespaces['staging']}/wine-quality"
    assert record["cluster"] == "local-staging"
    assert record["models"] == {
        r: f"{n}/{v1[r]}"
        for r, n in (
            ("predictor", "wine_quality"),
            ("drift", "wine_quality_drift"),
            ("outlier", "wine_quality_outliers"),
        )
    }
    assert record["drift"] == "NoDrift"
    soak_from = time.mktime(time.strptime(record["from"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert soak_from >= int(clean_from) - 1  # the soak started over once the windows were clean
    for role, name in (("drift", "wine_quality_drift"), ("outlier", "wine_quality_outliers")):
        assert json.loads(registry.get_model_version(name, v1[role]).tags[TAG]) == record

    # -- 2. Production pinned to what staging verified: Healthy, Production in the registry. -------------
    pipeline.pin("production", v1, "Production: wine_quality " + v1["predictor"])
    pipeline.wait_health("production", "Healthy")
    wait_for(lambda: pipeline.stage(v1["predictor"]) == "Production", 30, 0.5, "v1 Production")

    # -- 3. A hand edit naming an unverified version: applied, not Healthy, nothing moves. ---------------
    v2 = new_versions(registry, trained_models)
    pipeline.pin("production", v2, "Production: skip staging")
    _, message, _ = pipeline.wait_health("production", "Progressing", mentions="AwaitingVerification")
    assert f"wine_quality/{v2['predictor']}" in message
    assert "not verified in staging" in message
    gate = pipeline.condition("production", "PromotionAllowed")
    assert (gate["status"], gate["reason"]) == ("False", "AwaitingVerification")
    namespace = pipeline.namespaces["production"]
    pods = {p.metadata.name for p in client.CoreV1Api(pipeline.api).list_namespaced_pod(namespace).items}
    assert pipeline.served_predictor("production") == f"models:/wine_quality/{v1['predictor']}"
    assert pipeline.resource("production")["status"]["models"]["predictor"]["version"] == v1["predictor"]
    assert pipeline.stage(v2["predictor"]) != "Production"

    # -- 4. No bypass: a forged status, or staging's record of v1 copied onto v2, ships nothing. ---------
    kubectl(
        pipeline.kubeconfig,
        "patch",
        "mdep",
        "wine-quality",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {"status": {"verification": {"environment": "staging", "verifiedAt": "2026-01-01T00:00:00Z"}}}
        ),
    )
    for role, name in (
        ("predictor", "wine_quality"),
        ("drift", "wine_quality_drift"),
        ("outlier", "wine_quality_outliers"),
    ):
        registry.set_model_version_tag(name, v2[role], TAG, json.dumps(record))
    # Three gate polls (every 2 s): the gate stays shut all along.
    reasons = observe(lambda: pipeline.condition("production", "PromotionAllowed")["reason"], 3 * 2 + 1)
    assert set(reasons) == {"AwaitingVerification"}
    assert pipeline.served_predictor("production") == f"models:/wine_quality/{v1['predictor']}"
    assert {
        p.metadata.name for p in client.CoreV1Api(pipeline.api).list_namespaced_pod(namespace).items
    } == pods
    for role, name in (
        ("predictor", "wine_quality"),
        ("drift", "wine_quality_drift"),
        ("outlier", "wine_quality_outliers"),
    ):
        registry.delete_model_version_tag(name, v2[role], TAG)

    # -- 5. Staging verifies v2: production rolls out by itself, Healthy, Production in the registry. ----
    pipeline.pin("staging", v2, "Staging: wine_quality " + v2["predictor"])
    pipeline.wait_record(v2["predictor"])
    pipeline.wait_health("production", "Healthy")
    assert pipeline.served_predictor("production") == f"models:/wine_quality/{v2['predictor']}"
    wait_for(lambda: pipeline.stage(v2["predictor"]) == "Production", 30, 0.5, "v2 Production")

    # -- 6. modelops promote: staging verifies v3, the command writes the commit, a merge ships it. ------
    v3 = new_versions(registry, trained_models)
    pipeline.pin("staging", v3, "Staging: wine_quality " + v3["predictor"])
    pipeline.wait_record(v3["predictor"])
    before = pipeline.repo.manifest("production").read_text()
    done = pipeline.repo.promote("staging", registry.tracking_uri)
    assert done.returncode == 0, done.stderr
    branch = f"promote/wine_quality-{v3['predictor']}"
    assert f"committed on {branch}" in done.stderr
    assert f'+    predictor: {{name: wine_quality, version: "{v3["predictor"]}"}}' in done.stdout
    after = pipeline.repo.manifest("production").read_text()
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert len(changed) == 3
    assert git(pipeline.repo.clone, "rev-parse", "--abbrev-ref", "HEAD").strip() == branch
    assert "verified in staging by" in git(pipeline.repo.clone, "log", "-1", "--format=%B")
    assert (
        pipeline.served_predictor("production") == f"models:/wine_quality/{v2['predictor']}"
    )  # not merged yet
    pipeline.merge(branch)  # the reviewer's merge
    wait_for(
        lambda: pipeline.served_predictor("production") == f"models:/wine_quality/{v3['predictor']}",
        90,
        0.5,
        "v3 rolled out",
    )
    pipeline.wait_health("production", "Healthy")

    # -- 7. A version that cannot work is Degraded in Argo CD, with the status's reason. ----------------
    pipeline.pin(
        "production",
        {"predictor": "99999", "drift": v3["drift"], "outlier": v3["outlier"]},
        "Production: a typo",
    )
    _, message, _ = pipeline.wait_health("production", "Degraded")
    assert "ModelNotFound" in message
    assert "99999" in message
