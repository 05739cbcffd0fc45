"""The chart installed into the real API server: the operator Deployment comes up (kwok runs its Pod),
the API server's own RBAC grants exactly what docs/rbac.md says, and the real operator, run with the
chart's ServiceAccount token, works without a single Forbidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from modelops_cluster import Cluster
from modelops_support.ports import free_port
from modelops_support.waiting import wait_for
from tests.fixtures.cluster import service_account_kubeconfig
from tests.helm_chart import CHART, REPO_ROOT, build_helm, find, render, run_helm

pytestmark = pytest.mark.cluster

FIELD_MANAGER = "modelops-chart-test"
ROLLOUT_TIMEOUT = 90


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_helm()


def apply_all(api: client.ApiClient, objects: list[dict[str, Any]]) -> None:
    """Server-side apply, CRDs first (and established) so that the kinds they define resolve."""
    crds = find(objects, "CustomResourceDefinition")
    dynamic = DynamicClient(api)
    for crd in crds:
        resource = dynamic.resources.get(api_version=crd["apiVersion"], kind=crd["kind"])
        dynamic.server_side_apply(resource, crd, field_manager=FIELD_MANAGER, force_conflicts=True)
    extensions = client.ApiextensionsV1Api(api)
    for crd in crds:

        def established(name: str = crd["metadata"]["name"]) -> bool:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_for(established, 30, 0.2, f"CRD {crd['metadata']['name']} established")
    dynamic = DynamicClient(api)  # fresh discovery, now with the new kinds
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            continue
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        namespace = obj["metadata"].get("namespace")
        dynamic.server_side_apply(
            resource, obj, namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True
        )


def delete_cluster_scoped(api: client.ApiClient, objects: list[dict[str, Any]]) -> None:
    """Remove what the namespace's deletion would not (CRDs stay: other tests share them)."""
    dynamic = DynamicClient(api)
    for obj in objects:
        if obj["metadata"].get("namespace") or obj["kind"] == "CustomResourceDefinition":
            continue
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        if resource.namespaced:
            continue
        try:
            dynamic.delete(resource, name=obj["metadata"]["name"])
        except ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture
def installed(
    cluster: Cluster, namespace: str, helm: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[list[dict[str, Any]], str]]:
    """The chart rendered for `namespace` and applied; parametrise with "namespaced" to watch only it."""
    values: dict[str, Any] = {"peering": {"name": f"{namespace}-peering"}}
    if getattr(request, "param", None) == "namespaced":
        values["watch"] = {"namespaces": [namespace]}
    release = f"r{namespace.removeprefix('test-')}"  # cluster-scoped names differ per test
    objects = render(helm, tmp_path, values, release=release, namespace=namespace, include_crds=True)
    with cluster.api_client() as api:
        try:
            apply_all(api, objects)
            yield objects, f"system:serviceaccount:{namespace}:{release}-modelops-operator"
        finally:
            delete_cluster_scoped(api, objects)


def allowed(
    api: client.ApiClient, user: str, verb: str, group: str, resource: str, namespace: str | None
) -> bool:
    """The API server's RBAC decision for one request by `user`."""
    subresource = ""
    if "/" in resource:
        resource, subresource = resource.split("/", 1)
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, subresource=subresource, namespace=namespace
            ),
        )
    )
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


def test_the_operator_deployment_becomes_available(cluster: Cluster, namespace: str, installed: Any) -> None:
    objects, _ = installed
    release_deployment = find(objects, "Deployment")[0]
    name = release_deployment["metadata"]["name"]
    with cluster.api_client() as api:
        apps = client.AppsV1Api(api)

        def available() -> bool:
            status = apps.read_namespaced_deployment(name, namespace).status
            ready = any(c.type == "Available" and c.status == "True" for c in status.conditions or [])
            return ready and status.ready_replicas == 1

        wait_for(available, ROLLOUT_TIMEOUT, 0.5, f"Deployment {name} available")
        (pod,) = (
            client.CoreV1Api(api)
            .list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=modelops-operator")
            .items
        )
        assert (
            pod.spec.service_account_name
            == release_deployment["spec"]["template"]["spec"]["serviceAccountName"]
        )
        assert pod.spec.security_context.run_as_non_root is True
        (container,) = pod.spec.containers
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.capabilities.drop == ["ALL"]
        assert container.liveness_probe.http_get.path == "/healthz"
        peering = client.CustomObjectsApi(api).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", f"{namespace}-peering"
        )
        assert peering["kind"] == "ClusterKopfPeering"


# (verb, group, resource, namespace or None for "the test namespace") -> expected decision.
CLUSTER_WIDE_DECISIONS = [
    # kopf's cluster-wide watches list across all namespaces ("" = no namespace).
    ("watch", "modelops.dev", "modeldeployments", "", True),
    ("list", "apps", "deployments", "", True),
    ("watch", "batch", "jobs", "", True),
    ("patch", "apps", "deployments", "default", True),
    ("watch", "networking.k8s.io", "ingresses", "default", True),
    ("delete", "batch", "jobs", None, True),
    ("patch", "autoscaling", "horizontalpodautoscalers", None, True),
    ("patch", "modelops.dev", "modeldeployments/status", None, True),
    ("update", "modelops.dev", "modeldeployments/finalizers", None, True),
    ("get", "", "secrets", None, True),
    ("create", "", "events", None, True),
    ("watch", "apiextensions.k8s.io", "customresourcedefinitions", "", True),
    ("patch", "kopf.dev", "clusterkopfpeerings", "", True),
    ("list", "", "secrets", None, False),
    ("watch", "", "secrets", None, False),
    ("create", "", "secrets", None, False),
    ("list", "discovery.k8s.io", "endpointslices", None, True),
    ("watch", "discovery.k8s.io", "endpointslices", None, False),
    ("delete", "modelops.dev", "modeldeployments", None, False),
    ("create", "modelops.dev", "modeldeployments", None, False),
    ("create", "apps", "deployments", None, True),
    ("update", "apps", "deployments", None, False),
    ("delete", "apps", "deployments", None, True),  # a canary's Deployment when it ends
    ("delete", "", "services", None, True),  # a route's stable and canary Services
    ("patch", "gateway.networking.k8s.io", "httproutes", None, True),
    ("watch", "gateway.networking.k8s.io", "httproutes", None, False),
    ("list", "", "pods", "", True),
    ("watch", "", "pods", "", True),
    ("list", "apps", "replicasets", None, True),
    ("create", "", "pods", None, False),
    ("delete", "", "pods", None, False),
    ("get", "", "pods/log", None, False),
    ("watch", "apps", "replicasets", None, False),
    ("get", "", "configmaps", None, False),
    ("list", "", "nodes", "", False),
    ("delete", "apiextensions.k8s.io", "customresourcedefinitions", "", False),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", False),
]


def test_rbac_grants_what_the_operator_uses_and_nothing_else(
    cluster: Cluster, namespace: str, installed: Any
) -> None:
    _, user = installed
    with cluster.api_client() as api:
        decisions = {
            (verb, group, resource, ns): allowed(
                api, user, verb, group, resource, namespace if ns is None else (ns or None)
            )
            for verb, group, resource, ns, _ in CLUSTER_WIDE_DECISIONS
        }
    expected = {
        (verb, group, resource, ns): want for verb, group, resource, ns, want in CLUSTER_WIDE_DECISIONS
    }
    assert decisions == expected


def test_server_side_apply_creates_children_as_the_service_account(
    cluster: Cluster, namespace: str, installed: Any
) -> None:
    """The operator creates children by server-side apply, which the API server authorises as create."""
    _, user = installed
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "applied-by-operator", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "x", "image": "x"}]},
            },
        },
    }
    with cluster.api_client() as api:
        api.set_default_header("Impersonate-User", user)
        dynamic = DynamicClient(api)
        resource = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
        dynamic.server_side_apply(
            resource, deployment, namespace=namespace, field_manager="modelops-operator"
        )
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(api).list_namespaced_secret(namespace)
        assert denied.value.status == 403
    with cluster.api_client() as api:
        created = client.AppsV1Api(api).read_namespaced_deployment("applied-by-operator", namespace)
        assert created.metadata.managed_fields[0].manager == "modelops-operator"


NAMESPACED_DECISIONS = [
    ("patch", "apps", "deployments", True),
    ("get", "", "secrets", True),
    ("patch", "kopf.dev", "kopfpeerings", True),
    ("patch", "modelops.dev", "modeldeployments/status", True),
    ("list", "", "secrets", False),
]


@pytest.mark.parametrize("installed", ["namespaced"], indirect=True)
def test_namespaced_mode_grants_only_in_the_watched_namespace(
    cluster: Cluster, namespace: str, installed: Any
) -> None:
    _, user = installed
    with cluster.api_client() as api:
        for verb, group, resource, want in NAMESPACED_DECISIONS:
            assert allowed(api, user, verb, group, resource, namespace) is want, (verb, resource)
            assert allowed(api, user, verb, group, resource, "default") is False, (verb, resource, "default")
        assert allowed(api, user, "watch", "", "namespaces", None) is True
        assert allowed(api, user, "patch", "kopf.dev", "clusterkopfpeerings", None) is False
        peering = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", f"{namespace}-peering"
        )
        assert peering["kind"] == "KopfPeering"


def log_entry(line: str) -> dict[str, Any]:
    """One line of kopf's JSON log (an empty dict for anything else)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def sample_deployment(namespace: str) -> dict[str, Any]:
    """The staging sample, pointed at a registry that is not there (the operator reports it)."""
    sample = yaml.safe_load((REPO_ROOT / "examples" / "wine-quality-staging.yaml").read_text())
    sample["metadata"]["namespace"] = namespace
    sample["spec"]["registry"]["trackingUri"] = f"http://127.0.0.1:{free_port()}"
    sample["spec"].pop("stage", None)
    sample["spec"].pop("promotion", None)
    return sample


@pytest.mark.parametrize("installed", ["namespaced"], indirect=True)
def test_the_operator_runs_with_the_charts_service_account(
    cluster: Cluster, namespace: str, installed: Any, tmp_path: Path
) -> None:
    """kopf and the operator's handlers, with the chart's token: liveness, peering, status, no 403."""
    objects, user = installed
    sa = user.rsplit(":", 1)[1]
    deployment = find(objects, "Deployment")[0]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # The chart's own kopf arguments, with the liveness endpoint moved to a free loopback port.
    port = free_port()
    args = [
        a if not a.startswith("--liveness=") else f"--liveness=http://127.0.0.1:{port}/healthz"
        for a in container["args"]
    ]
    args += ["--priority=100"]
    with cluster.api_client() as api:
        kubeconfig = service_account_kubeconfig(cluster, api, namespace, sa, tmp_path / "operator.kubeconfig")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_ID": "chart-test-operator"}
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        try:

            def live() -> bool:
                assert process.poll() is None, f"operator exited: {log_path.read_text()[-3000:]}"
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    return response.status == 200

            wait_for(live, 60, 0.5, "operator liveness endpoint", ignore=(OSError,))
            with cluster.api_client() as api:
                custom = client.CustomObjectsApi(api)

                def peered() -> bool:
                    peering = custom.get_namespaced_custom_object(
                        "kopf.dev", "v1", namespace, "kopfpeerings", f"{namespace}-peering"
                    )
                    return "chart-test-operator" in (peering.get("status") or {})

                wait_for(peered, 30, 0.5, "the operator's keep-alive in the KopfPeering")
                sample = sample_deployment(namespace)
                custom.create_namespaced_custom_object(
                    "modelops.dev", "v1alpha1", namespace, "modeldeployments", sample
                )

                def status_written() -> dict[str, Any] | None:
                    body = custom.get_namespaced_custom_object(
                        "modelops.dev", "v1alpha1", namespace, "modeldeployments", sample["metadata"]["name"]
                    )
                    status = body.get("status") or {}
                    return status if status.get("conditions") else None

                status = wait_for(status_written, 60, 0.5, "the operator to write the ModelDeployment status")
                ready = next(c for c in status["conditions"] if c["type"] == "Ready")
                assert ready["status"] != "True"

                # And it was this operator (not another one in the cluster) that handled the resource.
                def handled_here() -> bool:
                    return any(
                        (entry.get("object") or {}).get("namespace") == namespace
                        for entry in map(log_entry, log_path.read_text().splitlines())
                    )

                wait_for(handled_here, 30, 0.5, "the operator's log to name the ModelDeployment")
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    log_text = log_path.read_text()
    denials = ("forbidden", "not enough permissions", " 403")
    forbidden = [line for line in log_text.splitlines() if any(d in line.lower() for d in denials)]
    assert not forbidden, "\n".join(forbidden[:10])


def test_helm_install_and_uninstall_keep_the_crds(
    cluster: Cluster, namespace: str, helm: Path, tmp_path: Path
) -> None:
    """helm itself against the API server: CRDs first, then the release; uninstall leaves the CRDs."""
    release = f"h{namespace.removeprefix('test-')}"
    common = ["--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace]
    installed = run_helm(
        helm,
        [
            "install",
            release,
            str(CHART),
            *common,
            "--set",
            f"peering.name={namespace}-peering",
            "--wait",
            "--timeout",
            "120s",
        ],
        tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    assert "It handles ModelDeployments (modelops.dev/v1alpha1) in every namespace." in installed.stdout
    with cluster.api_client() as api:
        apps = client.AppsV1Api(api)
        deployment = apps.read_namespaced_deployment(f"{release}-modelops-operator", namespace)
        assert deployment.status.ready_replicas == 1  # --wait waited for kwok's Ready Pod
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.read_cluster_role(f"{release}-modelops-operator")

        uninstalled = run_helm(helm, ["uninstall", release, *common, "--wait", "--timeout", "120s"], tmp_path)
        assert uninstalled.returncode == 0, uninstalled.stderr

        def release_gone() -> bool:
            try:
                rbac.read_cluster_role(f"{release}-modelops-operator")
            except ApiException as e:
                return e.status == 404
            return False

        wait_for(release_gone, 60, 0.5, "the release's ClusterRole to go")
        extensions = client.ApiextensionsV1Api(api)
        for name in (
            "modeldeployments.modelops.dev",
            "clusterkopfpeerings.kopf.dev",
            "kopfpeerings.kopf.dev",
        ):
            assert extensions.read_custom_resource_definition(name).metadata.deletion_timestamp is None
