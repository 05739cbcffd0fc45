"""The operator end to end: a real `kopf run` against the project's control plane and a real MLflow server.

kwok makes the pods Running/Ready (and completes Job pods), or crash-loops those annotated
kwok.modelops.dev/crash-loop, so rollouts, availability, progress deadlines and the build path are observed
exactly as on a real cluster, without containers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops_contract import ROLES
from modelops_operator.crd import GROUP, PLURAL, VERSION
from modelops_support.local_operator import LocalOperator
from modelops_support.waiting import observe, wait_for
from tests.fixtures.operator import (
    READY_TIMEOUT,
    World,
    apply,
    condition,
    custom,
    env_of,
    get_mdep,
    kubectl,
    manifest,
    module_operator,
    wait_condition,
)

pytestmark = pytest.mark.cluster

ALIAS_POLL_SECONDS = 2  # the operator's MODELOPS_ALIAS_POLL_SECONDS in these tests (default 60)
# The retries of a temporary failure (a Secret that comes later, a registry back from an outage) wait at most
# this long here (MODELOPS_MAX_BACKOFF_SECONDS, default 60): the tests see the recovery, not the backoff.
MAX_BACKOFF_SECONDS = 8


@pytest.fixture(scope="module")
def operator(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOperator]:
    """The real `kopf run` (all namespaces), polling aliases often so that a moved alias shows quickly."""
    log_dir = tmp_path_factory.mktemp("operator")
    yield from module_operator(
        kubeconfig,
        log_dir,
        MODELOPS_ALIAS_POLL_SECONDS=str(ALIAS_POLL_SECONDS),
        MODELOPS_MAX_BACKOFF_SECONDS=str(MAX_BACKOFF_SECONDS),
    )


def test_staging_sample_becomes_ready_and_is_recorded_in_the_registry(
    world: World,
) -> None:
    kubeconfig, api, namespace, registry, trained_models = world
    versions = world.fresh_versions()
    name = "wine-staging"
    doc = world.manifest(name, versions)
    world.apply(doc)

    obj = wait_condition(api, namespace, name, "Ready")
    status = obj["status"]
    assert status["models"]["predictor"]["version"] == versions["predictor"]
    assert status["models"]["drift"]["uri"] == f"models:/wine_quality_drift/{versions['drift']}"
    assert status["trainingRunId"] == trained_models["training_run_id"]
    assert status["url"] == "http://wine-staging.modelops.local/"
    assert status["readyReplicas"] == 1
    assert status["selector"] == f"app.kubernetes.io/instance={name},app.kubernetes.io/name=modelops-service"
    assert condition(obj, "Reconciling") is None
    assert condition(obj, "Stalled") is None

    dep = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    env = env_of(dep)
    assert env["MODELOPS_PREDICTOR_URI"].value == f"models:/wine_quality/{versions['predictor']}"
    assert env["MLFLOW_TRACKING_URI"].value == registry.tracking_uri
    assert env["OMP_NUM_THREADS"].value == "1"
    container = dep.spec.template.spec.containers[0]
    assert container.readiness_probe.http_get.path == "/readyz"
    assert container.security_context.read_only_root_filesystem is True
    assert dep.metadata.owner_references[0].kind == "ModelDeployment"
    assert dep.metadata.labels["app.kubernetes.io/managed-by"] == "modelops-operator"
    svc = client.CoreV1Api(api).read_namespaced_service(name, namespace)
    assert svc.spec.selector == dep.spec.selector.match_labels
    ing = client.NetworkingV1Api(api).read_namespaced_ingress(name, namespace)
    assert ing.spec.rules[0].host == "wine-staging.modelops.local"

    # The registry write-back follows availability.
    synced = wait_condition(api, namespace, name, "RegistrySynced")
    assert synced["status"]["registrySyncedKey"]
    for role in ROLES:
        mv = registry.get_model_version(trained_models["models"][role]["name"], versions[role])
        assert mv.current_stage == "Staging"
        assert "staging" in mv.aliases
        record = json.loads(mv.tags[f"modelops.deployment.{namespace}.{name}"])
        assert record["stage"] == "Staging"
        assert "modelops.deployed_at" in mv.tags

    # kubectl shows the columns; -o wide adds the image, its digest and drift.
    table = kubectl(kubeconfig, "get", "modeldeployments", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "VERSION", "STAGE", "READY", "MESSAGE", "URL", "AGE"]
    row = table[1]
    assert name in row
    assert "wine_quality" in row
    assert "Staging" in row
    assert "True" in row
    assert "on 1/1 pods" in row
    wide = kubectl(kubeconfig, "get", "mdep", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-4:] == ["IMAGE", "DIGEST", "DRIFT", "CANARY"]
    assert "modelops/modelops-service:0.1.0" in wide[1]


def test_version_change_rolls_out_and_moves_the_registry(
    world: World,
) -> None:
    api, namespace, registry, trained_models = world.api, world.namespace, world.registry, world.trained
    first = world.fresh_versions()
    name = "wine-roll"
    doc = world.manifest(name, first)
    world.apply(doc)
    wait_condition(api, namespace, name, "RegistrySynced")
    apps = client.AppsV1Api(api)
    template_before = apps.read_namespaced_deployment(name, namespace).spec.template

    second = world.fresh_versions()
    doc = world.manifest(name, second)
    world.apply(doc)
    obj = wait_condition(
        api,
        namespace,
        name,
        "Ready",
        extra=lambda o: o["status"]["models"]["predictor"]["version"] == second["predictor"],
    )
    assert obj["metadata"]["generation"] == 2
    dep = apps.read_namespaced_deployment(name, namespace)
    assert dep.spec.template != template_before
    assert env_of(dep)["MODELOPS_PREDICTOR_URI"].value == f"models:/wine_quality/{second['predictor']}"
    replica_sets = apps.list_namespaced_replica_set(
        namespace, label_selector=f"app.kubernetes.io/instance={name}"
    )
    assert len(replica_sets.items) == 2  # a rollout, not an in-place edit

    wait_condition(api, namespace, name, "RegistrySynced")
    for role in ROLES:
        model = trained_models["models"][role]["name"]
        assert registry.get_model_version(model, second[role]).current_stage == "Staging"
        assert registry.get_model_version(model, first[role]).current_stage == "Archived"
        assert registry.get_model_version_by_alias(model, "staging").version == second[role]


def test_moved_alias_is_followed_without_a_spec_change(
    world: World,
) -> None:
    api, namespace, registry, trained_models = world.api, world.namespace, world.registry, world.trained
    alias = "champion"
    names = {role: trained_models["models"][role]["name"] for role in ROLES}
    first = world.fresh_versions()
    for role in ROLES:
        registry.set_registered_model_alias(names[role], alias, first[role])
    name = "wine-alias"
    doc = world.manifest(name, {})
    doc["spec"]["models"] = {role: {"name": names[role], "alias": alias} for role in ROLES}
    world.apply(doc)
    obj = wait_condition(api, namespace, name, "RegistrySynced")
    assert obj["status"]["models"]["predictor"]["version"] == first["predictor"]
    assert obj["status"]["models"]["predictor"]["alias"] == alias
    key_before = obj["status"]["registrySyncedKey"]

    # Someone moves the predictor's alias in MLflow; the spec stays as it is.
    second = world.fresh_versions()
    registry.set_registered_model_alias(names["predictor"], alias, second["predictor"])
    obj = wait_condition(
        api,
        namespace,
        name,
        "RegistrySynced",
        extra=lambda o: (
            o["status"]["models"]["predictor"]["version"] == second["predictor"]
            and o["status"].get("registrySyncedKey") != key_before
        ),
    )
    assert obj["metadata"]["generation"] == 1
    assert condition(obj, "Ready")["status"] == "True"
    assert (
        obj["status"]["models"]["predictor"]["uri"] == f"models:/{names['predictor']}/{second['predictor']}"
    )
    assert obj["status"]["models"]["drift"]["version"] == first["drift"]  # its alias did not move
    assert obj["status"]["models"]["outlier"]["version"] == first["outlier"]
    apps = client.AppsV1Api(api)
    dep = apps.read_namespaced_deployment(name, namespace)
    assert (
        env_of(dep)["MODELOPS_PREDICTOR_URI"].value == f"models:/{names['predictor']}/{second['predictor']}"
    )
    assert env_of(dep)["MODELOPS_DRIFT_URI"].value == f"models:/{names['drift']}/{first['drift']}"

    # The new version is written back like any new version; the one it replaces is archived.
    moved = registry.get_model_version(names["predictor"], second["predictor"])
    assert moved.current_stage == "Staging"
    assert "staging" in moved.aliases
    assert json.loads(moved.tags[f"modelops.deployment.{namespace}.{name}"])["stage"] == "Staging"
    assert registry.get_model_version(names["predictor"], first["predictor"]).current_stage == "Archived"
    assert registry.get_model_version_by_alias(names["predictor"], alias).version == second["predictor"]

    # At rest the poll keeps running but writes nothing: no status write, no Deployment change.
    # (The drift poll's first look at the new pods, a few seconds after Ready, is part of settling.)
    def drift_names_the_new_pods() -> bool:
        drift = (get_mdep(api, namespace, name).get("status") or {}).get("drift") or {}
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"app.kubernetes.io/instance={name}"
        )
        return bool(pods.items) and all(p.metadata.name in drift.get("message", "") for p in pods.items)

    wait_for(drift_names_the_new_pods, 30, 0.5, "status.drift about the new pods")
    seen = observe(
        lambda: (
            get_mdep(api, namespace, name)["metadata"]["resourceVersion"],
            apps.read_namespaced_deployment(name, namespace).metadata.generation,
        ),
        5 * ALIAS_POLL_SECONDS + 2,
    )
    changes = sum(a != b for a, b in itertools.pairwise(seen))
    assert seen[0][1] == dep.metadata.generation
    assert changes == 0


def test_deleted_or_edited_children_are_restored_and_removed_with_the_owner(
    world: World,
) -> None:
    api, namespace = world.api, world.namespace
    versions = world.fresh_versions()
    name = "wine-drift"
    doc = world.manifest(name, versions, stage=None, promotion=None)
    del doc["spec"]["stage"], doc["spec"]["promotion"]
    world.apply(doc)
    wait_condition(api, namespace, name, "Ready")
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)

    old_uid = core.read_namespaced_service(name, namespace).metadata.uid
    core.delete_namespaced_service(name, namespace)
    wait_for(
        lambda: core.read_namespaced_service(name, namespace).metadata.uid != old_uid,
        30,
        0.25,
        "Service re-created",
        ignore=(ApiException,),
    )
    net.delete_namespaced_ingress(name, namespace)
    wait_for(
        lambda: net.read_namespaced_ingress(name, namespace),
        30,
        0.25,
        "Ingress re-created",
        ignore=(ApiException,),
    )

    apps.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": 3}})
    wait_for(
        lambda: apps.read_namespaced_deployment(name, namespace).spec.replicas == 1,
        30,
        0.25,
        "replicas restored",
    )
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "model-server", "image": "evil:latest"}]}}}
    }
    apps.patch_namespaced_deployment(name, namespace, patch)
    wait_for(
        lambda: (
            apps.read_namespaced_deployment(name, namespace).spec.template.spec.containers[0].image
            == "modelops/modelops-service:0.1.0"
        ),
        30,
        0.25,
        "image restored",
    )
    wait_condition(api, namespace, name, "Ready")

    custom(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def children_gone() -> bool:
        selector = f"modelops.dev/deployment={name}"
        left = apps.list_namespaced_deployment(namespace, label_selector=selector).items
        left += core.list_namespaced_service(namespace, label_selector=selector).items
        left += net.list_namespaced_ingress(namespace, label_selector=selector).items
        return not left

    wait_for(children_gone, 60, 0.5, "children garbage-collected")


def test_unknown_version_is_stalled_and_stays_calm(
    world: World,
) -> None:
    api, namespace = world.api, world.namespace
    versions = world.fresh_versions()
    versions["drift"] = "99999"
    name = "wine-unknown"
    world.apply(world.manifest(name, versions))
    obj = wait_condition(api, namespace, name, "Stalled")
    assert condition(obj, "Stalled")["reason"] == "ModelNotFound"
    assert "wine_quality_drift version 99999" in condition(obj, "Stalled")["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Reconciling") is None

    # Calm: no status writes and no new Events over a window, and nothing was deployed.
    core = client.CoreV1Api(api)
    version_before = get_mdep(api, namespace, name)["metadata"]["resourceVersion"]
    events_before = len(
        core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    )
    versions = [
        version_before,
        *observe(lambda: get_mdep(api, namespace, name)["metadata"]["resourceVersion"], 20),
    ]
    writes = sum(a != b for a, b in itertools.pairwise(versions))
    events_after = len(
        core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    )
    assert writes == 0
    assert events_after == events_before
    assert not client.AppsV1Api(api).list_namespaced_deployment(namespace).items


def test_a_child_the_api_server_refuses_is_stalled_with_its_message_and_recovers(
    world: World,
    operator: LocalOperator,
) -> None:
    kubeconfig, api, namespace = world.kubeconfig, world.api, world.namespace
    # Passes the CRD schema; the API server refuses the Deployment (422): requests above the limit.
    name = "wine-refused"
    resources = {"requests": {"cpu": "2"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    doc = world.manifest(
        name,
        world.fresh_versions(),
        resources=resources,
    )
    world.apply(doc)
    obj = wait_condition(api, namespace, name, "Stalled")
    stalled = condition(obj, "Stalled")
    assert stalled["reason"] == "ChildRejected"
    assert stalled["message"].startswith(f"Deployment {namespace}/{name} rejected by the API server: ")
    assert "must be less than or equal to cpu limit" in stalled["message"]
    assert condition(obj, "Available")["reason"] == "ChildRejected"
    assert condition(obj, "ModelsResolved")["status"] == "True"  # what was known before the refusal
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    # kubectl's columns show it; the operator's log names the object and the reason on one line.
    row = kubectl(kubeconfig, "get", "mdep", name, "-n", namespace).stdout.splitlines()[1]
    assert "False" in row
    refusals = [line for line in operator.log_tail(200_000).splitlines() if "ChildRejected" in line]
    assert refusals
    assert all("Audit-Id" not in line and "HTTP response headers" not in line for line in refusals)

    # A spec fix is the way out: Ready, Stalled gone.
    doc["spec"]["resources"] = {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    world.apply(doc)
    ready = wait_condition(api, namespace, name, "Ready")
    assert condition(ready, "Stalled") is None


def test_registry_outage_is_reconciling_and_recovers(world: World, mlflow_server) -> None:
    api, namespace = world.api, world.namespace
    versions = world.fresh_versions()
    name = "wine-outage"
    mlflow_server.stop()
    try:
        world.apply(world.manifest(name, versions))
        obj = wait_condition(api, namespace, name, "Reconciling", timeout=60)
        assert condition(obj, "Reconciling")["reason"] == "RegistryUnreachable"
        assert condition(obj, "Ready")["status"] == "False"
        assert condition(obj, "Stalled") is None
    finally:
        mlflow_server.start()
    obj = wait_condition(api, namespace, name, "Ready", timeout=120)
    assert condition(obj, "Reconciling") is None
    wait_condition(api, namespace, name, "RegistrySynced")


INVALID = [
    (
        "both version and alias",
        {"models": {"predictor": {"name": "wine_quality", "version": "1", "alias": "champion"}}},
        "exactly one of version or alias",
    ),
    (
        "version not digits",
        {"models": {"predictor": {"name": "wine_quality", "version": "v1"}}},
        "spec.models.predictor.version",
    ),
    ("stage not enumerated", {"stage": "QA"}, "spec.stage"),
    ("replicas out of bounds", {"replicas": 1000}, "spec.replicas"),
    (
        "pull and build",
        {"image": {"reference": "a", "build": {"repository": "r", "baseImage": "b"}}},
        "exactly one of reference or build",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_schema_invalid_resource_is_rejected_by_the_api_server(
    kubeconfig: str, namespace: str, case: str, change: dict[str, Any], message: str
) -> None:
    doc = manifest("wine-quality-staging.yaml", "wine-invalid", "http://127.0.0.1:1", {})
    for key, value in change.items():
        if key == "models":
            doc["spec"]["models"].update(value)
        else:
            doc["spec"][key] = value
    result = apply(kubeconfig, namespace, doc)
    assert result.returncode != 0, case
    assert message in result.stderr, result.stderr


def test_invalid_name_is_rejected(kubeconfig: str, namespace: str) -> None:
    doc = manifest("wine-quality-staging.yaml", "w" * 60, "http://127.0.0.1:1", {})
    result = apply(kubeconfig, namespace, doc)
    assert result.returncode != 0
    assert "DNS-1035" in result.stderr


def test_credentials_come_from_the_secret_and_never_leak(
    world: World,
    operator: LocalOperator,
) -> None:
    api, namespace = world.api, world.namespace
    versions = world.fresh_versions()
    name = "wine-secret"
    token = "s3cr3t-token-do-not-print"
    doc = world.manifest(name, versions)
    doc["spec"]["registry"]["credentialsSecret"] = {"name": "mlflow-credentials"}
    world.apply(doc)
    obj = wait_condition(api, namespace, name, "Reconciling", timeout=60)
    assert condition(obj, "Reconciling")["reason"] == "CredentialsSecretMissing"

    core = client.CoreV1Api(api)
    secret = {"metadata": {"name": "mlflow-credentials"}, "stringData": {"MLFLOW_TRACKING_TOKEN": token}}
    core.create_namespaced_secret(namespace, secret)
    obj = wait_condition(api, namespace, name, "Ready", timeout=READY_TIMEOUT)
    dep = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    ref = env_of(dep)["MLFLOW_TRACKING_TOKEN"].value_from.secret_key_ref
    assert (ref.name, ref.key) == ("mlflow-credentials", "MLFLOW_TRACKING_TOKEN")
    assert token not in json.dumps(obj)
    assert token not in json.dumps(api.sanitize_for_serialization(dep))
    assert token not in operator.log_path.read_text()
    events = core.list_namespaced_event(namespace).items
    assert all(token not in (e.message or "") for e in events)


def test_registry_write_back_failure_keeps_ready_and_recovers_on_a_fix(
    world: World,
) -> None:
    api, namespace, registry, trained_models = world.api, world.namespace, world.registry, world.trained
    versions = world.fresh_versions()
    name = "wine-sync"
    # The schema accepts "v1", but MLflow reserves aliases of the form v<digits>: the write-back fails.
    doc = world.manifest(name, versions, promotion={"alias": "v1"})
    world.apply(doc)
    obj = wait_condition(
        api,
        namespace,
        name,
        "RegistrySynced",
        status="False",
        extra=lambda o: condition(o, "RegistrySynced")["reason"] == "SyncFailed",
    )
    synced = condition(obj, "RegistrySynced")
    assert synced["reason"] == "SyncFailed"
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "Reconciling") is None

    doc["spec"]["promotion"] = {"alias": "sync-fixed"}
    world.apply(doc)
    wait_condition(api, namespace, name, "RegistrySynced")
    predictor = trained_models["models"]["predictor"]["name"]
    assert registry.get_model_version_by_alias(predictor, "sync-fixed").version == versions["predictor"]


CRASH_LOOP_ANNOTATION = "kwok.modelops.dev/crash-loop"  # kwok's pod-crash-loop stage (kwok-stages.yaml)
PROGRESS_DEADLINE_SECONDS = 25


def test_crash_loop_is_reconciling_then_stalled_and_recovers_when_fixed(
    world: World,
) -> None:
    kubeconfig, api, namespace, registry, trained_models = world
    versions = world.fresh_versions()
    name = "wine-crash"
    doc = world.manifest(
        name,
        versions,
        podMetadata={"annotations": {CRASH_LOOP_ANNOTATION: "true"}, "labels": {"team": "risk"}},
        progressDeadlineSeconds=PROGRESS_DEADLINE_SECONDS,
    )
    world.apply(doc)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    seen_ready: set[str] = set()  # every Ready status observed while the pods crash

    def wait_watching_ready(ctype: str, reason: str, timeout: float) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = get_mdep(api, namespace, name)
            ready = condition(obj, "Ready")
            seen_ready.add(ready["status"] if ready else "absent")
            c = condition(obj, ctype)
            if c and c["status"] == "True" and c["reason"] == reason:
                return obj
            return None

        try:
            return wait_for(check, timeout, 0.25, f"{ctype}={reason} on {namespace}/{name}")
        except TimeoutError as e:
            status = json.dumps(get_mdep(api, namespace, name).get("status"), indent=1)
            raise AssertionError(f"{e}; status: {status}") from e

    # While the rollout is within its deadline: Reconciling, and the status names the crash-looping pod.
    obj = wait_watching_ready("Reconciling", "PodsCrashLooping", PROGRESS_DEADLINE_SECONDS + 30)
    (crashing,) = core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={name}"
    ).items
    assert crashing.metadata.annotations[CRASH_LOOP_ANNOTATION] == "true"
    assert crashing.metadata.labels["team"] == "risk"
    assert crashing.status.phase == "Running"
    assert crashing.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    assert crashing.status.container_statuses[0].restart_count >= 1
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodsCrashLooping")
    assert f"pod {crashing.metadata.name}: container model-server CrashLoopBackOff (" in ready["message"]
    assert "restart" in ready["message"]
    assert "last exit code 1, Error" in ready["message"]
    assert condition(obj, "Stalled") is None
    dep = apps.read_namespaced_deployment(name, namespace)
    assert dep.spec.progress_deadline_seconds == PROGRESS_DEADLINE_SECONDS

    # Past the deadline the Deployment controller reports ProgressDeadlineExceeded: Stalled, naming the crash.
    obj = wait_watching_ready("Stalled", "ProgressDeadlineExceeded", PROGRESS_DEADLINE_SECONDS + 60)
    stalled = condition(obj, "Stalled")
    assert stalled["message"].startswith("rollout stalled: ")
    assert f"pod {crashing.metadata.name}: container model-server CrashLoopBackOff (" in stalled["message"]
    assert condition(obj, "Ready")["reason"] == "ProgressDeadlineExceeded"
    assert condition(obj, "Reconciling") is None
    assert condition(obj, "RegistrySynced")["reason"] == "WaitingForAvailable"
    assert seen_ready <= {"False", "absent"}, seen_ready  # never Ready=True while the pods crash

    row = kubectl(kubeconfig, "get", "mdep", name, "-n", namespace, "--no-headers").stdout
    assert " False " in row
    assert "rollout stalled" in row
    assert "CrashLoopBackOff" in row

    # Nothing was written back to the registry: no stage, no alias, no deployment tag.
    for role in ROLES:
        mv = registry.get_model_version(trained_models["models"][role]["name"], versions[role])
        assert mv.current_stage == "None"
        assert "staging" not in mv.aliases
        assert f"modelops.deployment.{namespace}.{name}" not in mv.tags

    # The fix is a spec edit: without the annotation the new pods start, the rollout completes.
    del doc["spec"]["podMetadata"]["annotations"]
    world.apply(doc)
    obj = wait_condition(api, namespace, name, "Ready", timeout=READY_TIMEOUT)
    assert obj["metadata"]["generation"] == 2
    assert condition(obj, "Stalled") is None
    assert condition(obj, "Reconciling") is None
    assert condition(obj, "Available")["reason"] == "DeploymentAvailable"
    template = apps.read_namespaced_deployment(name, namespace).spec.template.metadata
    assert CRASH_LOOP_ANNOTATION not in (template.annotations or {})
    assert template.labels["team"] == "risk"
    wait_condition(api, namespace, name, "RegistrySynced")
    for role in ROLES:
        mv = registry.get_model_version(trained_models["models"][role]["name"], versions[role])
        assert mv.current_stage == "Staging"
