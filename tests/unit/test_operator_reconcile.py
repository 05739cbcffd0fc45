"""reconcile()'s branches, fast, on an in-memory double of the Kubernetes edge (cluster tests: the real one).

Each branch must leave a status behind (Ready first, then Reconciling or Stalled) and return the Outcome
the handlers turn into kopf's errors. Models come from the status of the current generation (fresh=False),
or from a registry address nothing listens on (a real connection refusal, no double).
"""

from __future__ import annotations

import json
import socket
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from modelops_contract import ROLES
from modelops_operator.handlers import kopf_error
from modelops_operator.kube import KubeError, classify
from modelops_operator.reconciler import reconcile
from modelops_operator.settings import OperatorSettings
from modelops_operator.steps import Outcome
from tests.fixtures.kube import MemoryKube

NS, NAME = "ml", "wine"
SETTINGS = OperatorSettings()


def refusal(status: int, message: str, kind: str = "Deployment", method: str = "PATCH") -> KubeError:
    """The KubeError the edge raises for an API server answer with this status and Status message."""
    error = ApiException(status=status, reason="Refused")
    error.body = json.dumps({"kind": "Status", "message": message}).encode()
    return classify(error, method, kind, NS, NAME)


def model_deployment(
    tracking_uri: str = "http://127.0.0.1:1", resolved: bool = True, **spec: Any
) -> dict[str, Any]:
    """A ModelDeployment at generation 2, with its models resolved for that generation (or not)."""
    entry = {"name": "m", "version": "3", "runId": "r", "source": "s", "uri": "models:/m/3"}
    status = {"models": {r: dict(entry) for r in ROLES}, "resolvedGeneration": 2} if resolved else {}
    body_spec = {
        "registry": {"trackingUri": tracking_uri},
        "models": {r: {"name": f"m_{r}", "version": "3"} for r in ROLES},
        "image": {"reference": "modelops/modelops-service:0.1.0"},
        **spec,
    }
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": NS, "generation": 2, "uid": "u-1"},
        "spec": body_spec,
        "status": status,
    }


def available(kube: MemoryKube) -> None:
    """Let the Deployment controller finish the rollout of the applied Deployment."""
    deployment = kube.objects[("Deployment", NAME)]
    replicas = deployment["spec"].get("replicas", 1)
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        **{k: replicas for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")},
    }


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_rollout_in_progress_is_reconciling_then_ready() -> None:
    kube = MemoryKube()
    outcome = reconcile(kube, model_deployment(), fresh=False)
    assert outcome == Outcome.done("RolloutPending")  # the controller has not seen it yet
    assert kube.condition("Ready")["status"] == "False"
    assert kube.condition("Reconciling")["status"] == "True"
    assert {("Deployment", NAME), ("Service", NAME)} <= set(kube.objects)

    available(kube)
    outcome = reconcile(kube, model_deployment(), fresh=False)
    assert outcome.action == "done"
    assert kube.condition("Ready")["status"] == "True"
    assert kube.condition("Reconciling") is None
    assert kube.status["observedGeneration"] == 2


def test_an_invalid_spec_is_stalled_with_the_parser_message() -> None:
    kube = MemoryKube()
    body = model_deployment()
    del body["spec"]["models"]["drift"]
    outcome = reconcile(kube, body, fresh=True)
    assert outcome.action == "stall"
    assert outcome.reason == "InvalidSpec"
    assert kube.condition("Stalled")["reason"] == "InvalidSpec"
    assert not kube.objects


@pytest.mark.parametrize(
    ("status", "message", "reason", "action", "condition"),
    [
        (
            422,
            'Deployment.apps "wine" is invalid: requests must be <= limits',
            "ChildRejected",
            "stall",
            "Stalled",
        ),
        (400, "the object is malformed", "ChildRejected", "stall", "Stalled"),
        (403, 'deployments.apps "wine" is forbidden', "Forbidden", "stall", "Stalled"),
        (409, "the object has been modified", "Conflict", "retry", "Reconciling"),
        (429, "too many requests", "ApiThrottled", "retry", "Reconciling"),
        (500, "etcdserver: request timed out", "ApiUnavailable", "retry", "Reconciling"),
        (503, "unavailable", "ApiUnavailable", "retry", "Reconciling"),
    ],
)
def test_a_refused_child_is_in_the_status_with_the_api_servers_message(
    status: int, message: str, reason: str, action: str, condition: str
) -> None:
    kube = MemoryKube(fail={"Deployment": refusal(status, message)})
    outcome = reconcile(kube, model_deployment(), fresh=False)
    assert (outcome.action, outcome.reason) == (action, reason)
    assert message in outcome.message
    assert f"Deployment {NS}/{NAME}" in outcome.message
    written = kube.condition(condition)
    assert written is not None
    assert written["reason"] == reason
    assert message in written["message"]
    assert kube.condition("Ready")["status"] == "False"
    assert kube.condition("Available")["reason"] == reason
    assert kube.status["models"]["predictor"]["version"] == "3"  # what was known is kept


def test_a_refused_ingress_is_named_in_ingress_ready() -> None:
    kube = MemoryKube(fail={"Ingress": refusal(422, "spec.rules[0].host: Invalid value", kind="Ingress")})
    outcome = reconcile(kube, model_deployment(ingress={"host": "wine.example"}), fresh=False)
    assert outcome.action == "stall"
    assert kube.condition("IngressReady")["reason"] == "ChildRejected"
    assert "Ingress ml/wine rejected by the API server" in kube.condition("Stalled")["message"]


def test_an_unreachable_api_server_is_temporary() -> None:
    error = classify(ConnectionRefusedError("refused"), "GET", "Deployment", NS, NAME)
    assert (error.permanent, error.reason, error.status) == (False, "ApiUnreachable", None)
    kube = MemoryKube(fail={"Deployment": error})
    assert reconcile(kube, model_deployment(), fresh=False).action == "retry"
    assert kube.condition("Reconciling")["reason"] == "ApiUnreachable"


def test_a_status_that_cannot_be_written_is_retried() -> None:
    kube = MemoryKube(fail_status=refusal(500, "etcd down", kind="ModelDeployment"))
    outcome = reconcile(kube, model_deployment(), fresh=False)
    assert outcome.action == "retry"
    assert "status not written" in outcome.message


def test_a_missing_credentials_secret_waits_for_it() -> None:
    kube = MemoryKube()
    body = model_deployment(
        resolved=False, registry={"trackingUri": "http://127.0.0.1:1", "credentialsSecret": {"name": "creds"}}
    )
    outcome = reconcile(kube, body, fresh=True)
    assert (outcome.action, outcome.reason, outcome.delay) == ("retry", "CredentialsSecretMissing", 30.0)
    assert kube.condition("ModelsResolved")["reason"] == "CredentialsSecretMissing"


def test_an_unreachable_registry_is_reconciling_and_creates_nothing() -> None:
    kube = MemoryKube()
    body = model_deployment(f"http://127.0.0.1:{closed_port()}", resolved=False)
    outcome = reconcile(kube, body, fresh=True)
    assert (outcome.action, outcome.reason, outcome.delay) == ("retry", "RegistryUnreachable", None)
    assert kube.condition("Reconciling")["reason"] == "RegistryUnreachable"
    assert not kube.objects


def test_kopf_error_carries_out_each_outcome() -> None:
    assert kopf_error(Outcome.done("DeploymentAvailable"), retry=0, settings=SETTINGS) is None
    stalled = kopf_error(
        Outcome.stall("ChildRejected", "Deployment ml/wine rejected"), retry=0, settings=SETTINGS
    )
    assert isinstance(stalled, kopf.PermanentError)
    assert "Deployment ml/wine rejected" in str(stalled)
    fixed = kopf_error(
        Outcome.retry("CredentialsSecretMissing", "no Secret", 30.0), retry=5, settings=SETTINGS
    )
    assert isinstance(fixed, kopf.TemporaryError)
    assert fixed.delay == 30.0
    backed_off = kopf_error(Outcome.retry("ApiUnavailable", "HTTP 503"), retry=2, settings=SETTINGS)
    assert isinstance(backed_off, kopf.TemporaryError)
    assert backed_off.delay == 8.0
    floored = kopf_error(Outcome.retry("RegistryUnreachable", "down"), retry=0, settings=SETTINGS, floor=60.0)
    assert isinstance(floored, kopf.TemporaryError)
    assert floored.delay == 60.0


def test_classify_never_quotes_headers() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.headers = {"Audit-Id": "secret-looking-header", "Content-Type": "application/json"}
    error.body = json.dumps({"message": "spec.replicas: Invalid value: -1"}).encode()
    classified = classify(error, "PATCH", "Deployment", NS, NAME)
    assert "Audit-Id" not in str(classified)
    assert "\n" not in str(classified)
    assert (
        str(classified) == "Deployment ml/wine rejected by the API server: spec.replicas: Invalid value: -1"
    )


def test_a_pod_monitor_is_applied_and_reported_without_holding_ready() -> None:
    kube = MemoryKube()
    body = model_deployment(podMonitor={"enabled": True, "interval": "15s", "labels": {"release": "prom"}})
    reconcile(kube, body, fresh=False)
    available(kube)
    assert reconcile(kube, body, fresh=False).action == "done"
    monitor = kube.objects[("PodMonitor", NAME)]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"
    assert kube.condition("PodMonitorReady")["status"] == "True"
    assert kube.condition("Ready")["status"] == "True"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "PodMonitorCRDMissing"), (403, "Forbidden")],
)
def test_a_cluster_without_the_pod_monitor_crd_or_rbac_keeps_serving_and_says_so(
    status: int, reason: str
) -> None:
    missing = refusal(status, "the server could not find the requested resource", kind="PodMonitor")
    kube = MemoryKube(fail={"PodMonitor": missing})
    body = model_deployment(podMonitor={"enabled": True})
    reconcile(kube, body, fresh=False)
    available(kube)
    outcome = reconcile(kube, body, fresh=False)
    # Serving is not held back, and nothing is retried by kopf (a timer tries the PodMonitor again).
    assert outcome == Outcome.done("DeploymentAvailable")
    assert kube.condition("Ready")["status"] == "True"
    assert kube.condition("PodMonitorReady")["status"] == "False"
    assert kube.condition("PodMonitorReady")["reason"] == reason


def test_no_pod_monitor_means_no_condition_and_no_call_on_a_missing_crd() -> None:
    missing = refusal(404, "the server could not find the requested resource", kind="PodMonitor")
    kube = MemoryKube(fail={"PodMonitor": missing})
    reconcile(kube, model_deployment(), fresh=False)
    assert kube.condition("PodMonitorReady") is None
    assert kube.condition("Reconciling")["reason"] == "RolloutPending"


def test_a_builder_image_the_operator_does_not_run_is_stalled_and_starts_no_job() -> None:
    kube = MemoryKube()
    build = {"repository": "registry.local/wine", "baseImage": "svc:1", "builderImage": "evil/builder:1"}
    outcome = reconcile(kube, model_deployment(image={"build": build}), fresh=False)
    assert (outcome.action, outcome.reason) == ("stall", "BuilderNotAllowed")
    assert kube.condition("ImageReady")["reason"] == "BuilderNotAllowed"
    assert not [k for k, _ in kube.objects if k == "Job"]


def test_a_namespace_the_policy_does_not_name_records_nothing_and_says_why() -> None:
    kube = MemoryKube()
    body = model_deployment(verification={"environment": "staging", "soakSeconds": 0})
    reconcile(kube, body, fresh=False)
    available(kube)
    reconcile(kube, {**body, "status": kube.status}, fresh=False)
    verified = kube.condition("Verified")
    assert (verified["status"], verified["reason"]) == ("False", "NotPermitted")
    assert "nothing is recorded" in verified["message"]
    assert kube.condition("Ready")["status"] == "True"  # serving is not held back


def test_a_named_images_digest_is_read_from_the_pods_once_and_forgotten_when_the_reference_changes() -> None:
    kube = MemoryKube()
    digest = "sha256:" + "c" * 64
    status = {"containerStatuses": [{"name": "model-server", "imageID": f"reg.local/svc@{digest}"}]}
    kube.add("Pod", {"metadata": {"name": "wine-1"}, "status": status})
    body = model_deployment()
    reconcile(kube, body, fresh=False)
    assert kube.status.get("imageDigest") is None  # not available yet: the pods may run the old image
    available(kube)
    body["status"] = kube.status
    reconcile(kube, body, fresh=False)
    assert kube.status["imageDigest"] == digest
    pod_lists = [listed for listed in kube.listed if listed[0] == "Pod"]
    body["status"] = kube.status
    reconcile(kube, body, fresh=False)
    assert [listed for listed in kube.listed if listed[0] == "Pod"] == pod_lists  # read once per reference
    # A new reference: the old digest goes at once, the new one is read when the new rollout is available.
    body["spec"]["image"] = {"reference": "modelops/modelops-service:0.2.0"}
    body["status"] = kube.status
    kube.objects[("Deployment", NAME)]["status"] = {}  # the controller has not rolled it out yet
    reconcile(kube, body, fresh=False)
    assert kube.status["image"] == "modelops/modelops-service:0.2.0"
    assert kube.status["imageDigest"] is None
    newer = "sha256:" + "d" * 64
    kube.objects[("Pod", "wine-1")]["status"]["containerStatuses"][0]["imageID"] = f"reg.local/svc@{newer}"
    available(kube)
    body["status"] = kube.status
    reconcile(kube, body, fresh=False)
    assert kube.status["imageDigest"] == newer
