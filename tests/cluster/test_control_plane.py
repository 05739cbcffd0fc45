"""The control plane is real: kubectl, controllers, scheduler, kwok, CRD schema and status, GC, Jobs."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops_cluster import Cluster, LocalCluster
from modelops_support.kubectl import kubectl_binary
from modelops_support.waiting import wait_for

pytestmark = pytest.mark.cluster

# kwok moves a Pod through two stages of 1 to 5 s each (see kwok-stages.yaml); controllers add a little.
ROLLOUT_TIMEOUT = 90


def kubectl() -> str:
    """The project's kubectl (built from the pinned module; MODELOPS_KUBECTL overrides)."""
    found = kubectl_binary()
    if not os.access(found, os.X_OK):
        pytest.fail(f"kubectl not found at {found}")
    return found


def condition(obj: Any, kind: str) -> str | None:
    """The status of the condition of type `kind` on a typed object, or None."""
    for c in obj.status.conditions or []:
        if c.type == kind:
            return str(c.status)
    return None


def test_kubectl_lists_the_fake_node_ready(cluster: Cluster) -> None:
    result = subprocess.run(
        [kubectl(), "--kubeconfig", str(cluster.kubeconfig), "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    nodes = json.loads(result.stdout)["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    }
    if isinstance(cluster, LocalCluster):
        assert cluster.layout is not None
        node = next(n for n in nodes if n["metadata"]["name"] == cluster.layout.node_name)
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert cluster.layout.node_name in ready
    else:
        assert ready, f"no Ready node in {[n['metadata']['name'] for n in nodes]}"


def test_deployment_becomes_available_with_two_ready_replicas(cluster: Cluster, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }
    with cluster.api_client() as api:
        apps: Any = client.AppsV1Api(api)  # Any: the tests send dict bodies, read typed models
        core: Any = client.CoreV1Api(api)
        apps.create_namespaced_deployment(namespace, deployment)

        def available() -> bool:
            d = apps.read_namespaced_deployment_status("web", namespace)
            return d.status.ready_replicas == 2 and condition(d, "Available") == "True"

        wait_for(available, ROLLOUT_TIMEOUT, 0.5, "Deployment web Available with 2 ready replicas")

        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        assert len(pods) == 2
        # Created by the ReplicaSet controller, bound by the scheduler, made Running/Ready by kwok.
        assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)
        assert all(p.spec.node_name for p in pods)
        assert all(p.status.phase == "Running" for p in pods)


def _widget_crd(group: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {"replicas": {"type": "integer", "minimum": 1}},
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def test_crd_schema_and_status_subresource(cluster: Cluster, namespace: str) -> None:
    group = f"{namespace}.test.modelops.dev"  # unique per run, so an existing cluster keeps no clash
    crd = _widget_crd(group)
    with cluster.api_client() as api:
        extensions: Any = client.ApiextensionsV1Api(api)
        custom: Any = client.CustomObjectsApi(api)
        extensions.create_custom_resource_definition(crd)
        try:

            def established() -> bool:
                c = extensions.read_custom_resource_definition(crd["metadata"]["name"])
                return condition(c, "Established") == "True"

            wait_for(established, 30, 0.2, "CRD Established")
            args = (group, "v1", namespace, "widgets")

            def widget(name: str, replicas: object) -> dict[str, Any]:
                return {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": name},
                    "spec": {"replicas": replicas},
                }

            # The CRD must be served before objects can be created; the first create may race discovery.
            wait_for(
                lambda: custom.create_namespaced_custom_object(
                    *args, {**widget("good", 1), "status": {"phase": "Set"}}
                ),
                30,
                0.5,
                "Widget good created",
                ignore=(ApiException,),
            )
            created = custom.get_namespaced_custom_object(*args, "good")
            assert "status" not in created, "status on create must be dropped by the status subresource"

            with pytest.raises(ApiException) as invalid:
                custom.create_namespaced_custom_object(*args, widget("bad", 0))
            assert invalid.value.status == 422
            message = json.loads(invalid.value.body or "{}").get("message", "")
            assert "spec.replicas in body should be greater than or equal to 1" in message

            status = {"status": {"phase": "Ready"}}
            current = custom.patch_namespaced_custom_object_status(*args, "good", status)
            assert current["status"] == {"phase": "Ready"}
            # A spec update that also carries a status: the main resource must ignore the status part.
            updated = {**current, "spec": {"replicas": 3}, "status": {"phase": "Hacked"}}
            custom.replace_namespaced_custom_object(*args, "good", updated)
            after = custom.get_namespaced_custom_object(*args, "good")
            assert after["spec"]["replicas"] == 3
            assert after["status"] == {"phase": "Ready"}
            assert after["metadata"]["generation"] == 2
        finally:
            extensions.delete_custom_resource_definition(crd["metadata"]["name"])


def test_deleting_an_owner_deletes_its_dependents(cluster: Cluster, namespace: str) -> None:
    with cluster.api_client() as api:
        core: Any = client.CoreV1Api(api)
        owner = core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "owner"}, "data": {"a": "1"}}
        )
        reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
        for name in ("dependent-1", "dependent-2"):
            core.create_namespaced_config_map(
                namespace, {"metadata": {"name": name, "ownerReferences": [reference]}}
            )
        bystander = core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})

        core.delete_namespaced_config_map("owner", namespace)

        def dependents_gone() -> bool:
            names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
            return not names & {"dependent-1", "dependent-2"}

        wait_for(dependents_gone, 60, 0.5, "garbage collection of the dependents")
        still = core.read_namespaced_config_map("bystander", namespace)
        assert still.metadata.uid == bystander.metadata.uid


def test_job_with_a_completing_pod_reaches_complete(cluster: Cluster, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "once", "image": "registry.k8s.io/pause:3.10"}],
                }
            },
        },
    }
    with cluster.api_client() as api:
        batch: Any = client.BatchV1Api(api)
        batch.create_namespaced_job(namespace, job)

        def complete() -> bool:
            return condition(batch.read_namespaced_job_status("once", namespace), "Complete") == "True"

        wait_for(complete, ROLLOUT_TIMEOUT, 0.5, "Job once Complete")
        assert batch.read_namespaced_job_status("once", namespace).status.succeeded == 1
