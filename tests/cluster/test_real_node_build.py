"""The build path on the real node: `make image-push` into the local OCI registry (the CNCF distribution
registry, basic auth), a build Job that fetches the models and appends them with modelops-bake under the
`restricted` Pod Security Standard, pods that pull the result by digest, traffic through Traefik.

No kwok and no `ctr import` here: every image the pods and the build Job run comes from the registry,
pulled by containerd with the namespace's pull Secret.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from mlflow import MlflowClient

from modelops_cluster import LocalCluster
from modelops_cluster.oci_registry import LocalRegistry, pushed_references
from modelops_operator.image_registry import ImageRegistry, ImageRegistryError
from modelops_support.kubectl import kubectl
from modelops_support.local_operator import LocalOperator
from modelops_support.mlflow_server import LocalMlflowServer
from modelops_support.waiting import wait_for
from tests.fixtures.cluster import fresh_namespace
from tests.fixtures.image import REPO, build_image
from tests.fixtures.operator import (
    condition,
    get_mdep,
    manifest,
    new_versions,
    version_without_files,
    wait_condition,
)

pytestmark = pytest.mark.cluster

EXAMPLE = json.loads((REPO / "service" / "modelops_service" / "example_request.json").read_text())
BUILD_READY_TIMEOUT = 420.0  # a cold build: the models downloaded, the service image's layers copied
SECRET = "registry-credentials"


def images_built() -> dict[str, str]:
    """The operator, service and builder images, built with buildah (cached layers make this quick)."""
    return {target: build_image(target) for target in ("operator", "service", "builder")}


@dataclass
class BuildWorld:
    cluster: LocalCluster
    registry: LocalRegistry
    namespace: str
    pushed: dict[str, str]  # target -> host/modelops/modelops-<target>@sha256:...
    mlflow: LocalMlflowServer
    trained: dict[str, Any]

    @property
    def kubeconfig(self) -> str:
        return str(self.cluster.kubeconfig)

    def manifest(self, name: str, versions: dict[str, str], **build: Any) -> dict[str, Any]:
        """The build sample: this registry for everything, fresh versions, an Ingress host, stage Staging."""
        doc = manifest("wine-quality-build.yaml", name, self.mlflow.tracking_uri, versions)
        doc["spec"]["image"] = {
            "build": {
                "repository": f"{self.registry.host}/{self.namespace}/wine-quality",
                "baseImage": self.pushed["service"],
                "builderImage": self.pushed["builder"],
                "pushSecret": {"name": SECRET},
                "timeoutSeconds": 300,
                **build,
            },
            "pullSecrets": [{"name": SECRET}],
        }
        doc["spec"]["ingress"] = {"host": f"{name}.modelops.test", "path": "/"}
        doc["spec"]["stage"] = "Staging"
        return doc

    def apply(self, doc: dict[str, Any]) -> None:
        kubectl(self.kubeconfig, "apply", "-n", self.namespace, "-f", "-", stdin=yaml.safe_dump(doc))

    def wait(self, name: str, ctype: str = "Ready", **kw: Any) -> dict[str, Any]:
        with self.cluster.api_client() as api:
            return wait_condition(api, self.namespace, name, ctype, timeout=BUILD_READY_TIMEOUT, **kw)

    def resource(self, name: str) -> dict[str, Any]:
        with self.cluster.api_client() as api:
            return get_mdep(api, self.namespace, name)

    def listed(self, kind: str, selector: str) -> list[dict[str, Any]]:
        """Pods or Jobs of this namespace matching a label selector."""
        with self.cluster.api_client() as api:
            if kind == "Job":
                found: Any = client.BatchV1Api(api).list_namespaced_job(
                    self.namespace, label_selector=selector
                )
            else:
                found = client.CoreV1Api(api).list_namespaced_pod(self.namespace, label_selector=selector)
            return [api.sanitize_for_serialization(o) for o in found.items]

    def registry_client(self) -> ImageRegistry:
        return ImageRegistry(10.0, 1 << 16, frozenset({self.registry.host}))

    def credentials(self) -> tuple[str, str]:
        return self.registry.username, self.registry.password


def push_images(registry: LocalRegistry) -> dict[str, str]:
    """`make image-push` to the local registry, as the delivery workflow runs it; target -> reference."""
    env = {**os.environ, **registry.push_env()}
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", "image-push"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert registry.password not in done.stdout + done.stderr
    return pushed_references(done.stdout)


@pytest.fixture(scope="module")
def build_world(
    real_cluster: LocalCluster,
    node_mlflow: LocalMlflowServer,
    trained_models: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BuildWorld]:
    """Images pushed, a namespace under the `restricted` Pod Security Standard with the registry's
    credentials as a dockerconfigjson Secret, and an operator that runs this registry's builder."""
    assert real_cluster.node is not None
    registry = real_cluster.node.registry
    images_built()
    pushed = push_images(registry)
    with fresh_namespace(real_cluster) as namespace:
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        with real_cluster.api_client() as api:
            core = client.CoreV1Api(api)
            core.patch_namespace(namespace, {"metadata": {"labels": labels}})
            core.create_namespaced_secret(namespace, registry.pull_secret(SECRET))
        env = {
            "MODELOPS_BUILDER_IMAGES": pushed["builder"],
            "MODELOPS_PLAIN_HTTP_IMAGE_REGISTRIES": registry.host,
            "MODELOPS_ALIAS_POLL_SECONDS": "2",
            # The moved-tag test records staging here (no soak floor) and gates production on it.
            "MODELOPS_VERIFICATION_NAMESPACES": f"staging={namespace}",
            "MODELOPS_VERIFICATION_MIN_SOAK_SECONDS": "0",
            "MODELOPS_VERIFICATION_CHECK_SECONDS": "1",
            "MODELOPS_GATE_POLL_SECONDS": "2",
        }
        log = tmp_path_factory.mktemp("build-operator") / "operator.log"
        with LocalOperator(real_cluster.kubeconfig, log, [namespace], env=env):
            yield BuildWorld(real_cluster, registry, namespace, pushed, node_mlflow, trained_models)


def test_make_image_push_puts_every_image_in_the_local_registry(build_world: BuildWorld) -> None:
    """The workflow's push step, run here: each pushed reference is the digest the registry serves for
    its tag, read through the operator's own registry client; nobody reads without credentials."""
    assert set(build_world.pushed) == {"operator", "service", "builder"}
    registry = build_world.registry_client()
    for target, ref in build_world.pushed.items():
        repository, digest = ref.split("@")
        tag = f"{repository}:0.1.0"
        assert registry.tag_digest(tag, build_world.credentials()) == digest, target
        with pytest.raises(ImageRegistryError, match="Refused"):
            registry.tag_digest(tag, None)
    missing = f"{build_world.registry.host}/modelops/modelops-service:no-such-tag"
    assert registry.tag_digest(missing, build_world.credentials()) is None


def test_a_build_on_the_node_runs_by_digest_and_serves_through_the_ingress(build_world: BuildWorld) -> None:
    world = build_world
    registry = MlflowClient(world.mlflow.tracking_uri)
    versions = new_versions(registry, world.trained)
    name = "wine-baked"
    world.apply(world.manifest(name, versions))
    obj = world.wait(name)

    # The image: the derived tag in the registry, the pods pinned to its digest, containerd agreeing.
    build = obj["status"]["build"]
    tagged, digest = build["image"], build["digest"]
    assert tagged.endswith(
        f":p{versions['predictor']}-d{versions['drift']}-o{versions['outlier']}-" + tagged[-12:]
    )
    assert world.registry_client().tag_digest(tagged, world.credentials()) == digest
    repository = tagged.rsplit(":", 1)[0]
    assert obj["status"]["image"] == f"{repository}@{digest}"
    assert obj["status"]["imageDigest"] == digest
    assert condition(obj, "ImageReady")["reason"] == "ImageBuilt"
    pods = world.listed("Pod", f"app.kubernetes.io/instance={name}")
    assert pods
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["image"] == f"{repository}@{digest}"
        # Baked: no model URI in the pod's environment, the image's own configuration says where.
        assert not [
            e for e in container.get("env") or () if e["name"].endswith("_URI") and "MODEL" in e["name"]
        ]
        assert not [e for e in container.get("env") or () if e["name"] == "MODELOPS_PREDICTOR_URI"]
        (status,) = pod["status"]["containerStatuses"]
        assert status["imageID"].endswith(digest)

    # Nothing of the build is left: the Job and its pod are gone once the digest was recorded.
    assert world.listed("Job", f"modelops.dev/deployment={name}") == []
    wait_for(
        lambda: world.listed("Pod", "app.kubernetes.io/component=image-build") == [],
        60,
        0.5,
        "the build pod deleted with its Job",
    )

    # The baked versions answer through Traefik.
    assert world.cluster.node is not None
    with httpx.Client(
        base_url=world.cluster.node.ingress_url, headers={"Host": f"{name}.modelops.test"}, timeout=30
    ) as http:
        answer = http.post("/predict", json=EXAMPLE)
    assert answer.status_code == 200, answer.text
    predictor = world.trained["models"]["predictor"]["name"]
    assert answer.json()["model_versions"]["predictor"] == f"{predictor}/{versions['predictor']}"

    # The registry's deployment record names the image by digest.
    def recorded_image() -> str | None:
        tags = registry.get_model_version(predictor, versions["predictor"]).tags
        key = f"modelops.deployment.{world.namespace}.{name}"
        return json.loads(tags[key])["image"] if key in tags else None

    wait_for(lambda: recorded_image() == f"{repository}@{digest}", 60, 0.5, "the deployment tag's image")

    # A second ModelDeployment of the same versions finds the tag in the registry: no Job, same digest.
    twin = "wine-baked-twin"
    world.apply(world.manifest(twin, versions))
    again = world.wait(twin)
    assert condition(again, "ImageReady")["reason"] == "ImageReused"
    assert again["status"]["imageDigest"] == digest
    assert world.listed("Job", f"modelops.dev/deployment={twin}") == []

    # A canary of a built ModelDeployment: the challenger's own image, built the same way, runs beside it.
    challenger = new_versions(registry, world.trained)["predictor"]
    doc = world.manifest(twin, versions)
    doc["spec"]["canary"] = {
        "models": {"predictor": {"name": predictor, "version": challenger}},
        "weight": 50,
        "analysisSeconds": 3600,  # held: what runs is checked here, not the decision
    }
    world.apply(doc)

    def canary_image() -> dict[str, Any] | None:
        status = world.resource(twin).get("status") or {}
        built = status.get("canaryBuild") or {}
        return built if built.get("digest") and (status.get("canary") or {}).get("canaryPods") else None

    wait_for(canary_image, BUILD_READY_TIMEOUT, 1, "the challenger's image built and its pods planned")
    canary_build = world.resource(twin)["status"]["canaryBuild"]
    assert f":p{challenger}-d{versions['drift']}-o{versions['outlier']}-" in canary_build["image"]
    assert canary_build["digest"] != digest
    assert (
        world.registry_client().tag_digest(canary_build["image"], world.credentials())
        == canary_build["digest"]
    )
    assert world.resource(twin)["status"]["imageDigest"] == digest  # the stable pods' image unchanged
    with world.cluster.api_client() as api:
        deployment = client.AppsV1Api(api).read_namespaced_deployment(f"{twin}-canary", world.namespace)
    (container,) = deployment.spec.template.spec.containers
    assert container.image == f"{repository}@{canary_build['digest']}"
    assert not [e for e in container.env or () if e.name == "MODELOPS_PREDICTOR_URI"]  # baked as well

    answered: set[str] = set()
    with httpx.Client(
        base_url=world.cluster.node.ingress_url, headers={"Host": f"{twin}.modelops.test"}, timeout=30
    ) as http:

        def both_answer() -> bool:  # bounded by wait_for: a request every 0.2 s for at most 3 minutes
            answer = http.post("/predict", json=EXAMPLE)
            if answer.status_code == 200:
                answered.add(answer.json()["model_versions"]["predictor"])
            return len(answered) == 2

        wait_for(both_answer, 180, 0.2, "answers from the stable and the challenger's built image")
    assert answered == {f"{predictor}/{versions['predictor']}", f"{predictor}/{challenger}"}
    assert world.listed("Job", f"modelops.dev/deployment={twin}") == []  # its build Job gone too


FAILURES = {
    "bad credentials": "CredentialsRefused",
    "base image missing": "BaseImageUnavailable",
    "model download failing": "ModelDownloadFailed",
    "builder out of memory": "BuilderOOM",
}


def failing_build(world: BuildWorld, registry: MlflowClient, case: str) -> dict[str, Any]:
    """The build sample broken as `case` says (its Secret applied when it needs one)."""
    doc = world.manifest("wine-fails-" + case.split()[0], new_versions(registry, world.trained))
    build = doc["spec"]["image"]["build"]
    if case == "bad credentials":
        wrong = dataclasses.replace(world.registry, password="wrong")
        world.apply(wrong.pull_secret("wrong-push"))
        build["pushSecret"] = {"name": "wrong-push"}
    elif case == "base image missing":
        build["baseImage"] = f"{world.registry.host}/modelops/modelops-service:no-such-tag"
    elif case == "model download failing":
        predictor = doc["spec"]["models"]["predictor"]["name"]
        doc["spec"]["models"]["predictor"] = {
            "name": predictor,
            "version": version_without_files(registry, predictor),
        }
    else:  # the download (a Python process importing MLflow) cannot fit in 48 MiB
        build["resources"] = {"requests": {"memory": "32Mi"}, "limits": {"memory": "48Mi"}}
    return doc


def test_a_failed_build_is_named_and_leaves_nothing_behind(build_world: BuildWorld) -> None:
    """Each failure of FAILURES (applied together, so they fail side by side) is Stalled with its reason,
    final for the generation, the Job gone, no credential in the status."""
    world = build_world
    registry = MlflowClient(world.mlflow.tracking_uri)
    docs = {case: failing_build(world, registry, case) for case in FAILURES}
    for doc in docs.values():
        world.apply(doc)
    for case, reason in FAILURES.items():
        name = docs[case]["metadata"]["name"]
        obj = world.wait(name, "Stalled")
        ready = condition(obj, "ImageReady")
        assert ready is not None
        assert ready["reason"] == reason, (case, ready)
        assert obj["status"]["build"]["failed"] == reason
        assert obj["status"]["build"]["generation"] == obj["metadata"]["generation"]
        assert world.registry.password not in json.dumps(obj)
        assert world.listed("Job", f"modelops.dev/deployment={name}") == [], case


def test_a_tag_moved_after_staging_verified_it_does_not_pass_the_production_gate(
    build_world: BuildWorld,
) -> None:
    """Staging runs a built image by tag and records it (the pods' digest); the tag is then pushed over
    with another image. Production naming the tag waits at the gate, which asked the registry; production
    naming the verified digest passes."""
    world = build_world
    registry = MlflowClient(world.mlflow.tracking_uri)
    versions = new_versions(registry, world.trained)
    staging = world.manifest("wine-verified", versions, pinDigest=False)
    # Monitoring off: drift is "Disabled", so the record needs no traffic to be conclusive.
    staging["spec"].setdefault("serving", {})["monitoring"] = False
    staging["spec"]["verification"] = {"environment": "staging", "soakSeconds": 1}
    world.apply(staging)
    verified = world.wait("wine-verified", "Verified")
    tagged, digest = verified["status"]["build"]["image"], verified["status"]["build"]["digest"]
    assert verified["status"]["image"] == tagged  # run by tag: pinDigest false

    # The tag moves: the service image pushed over it.
    repository = tagged.rsplit(":", 1)[0]
    moved = subprocess.run(
        [
            "buildah",
            "push",
            "--quiet",
            "--tls-verify=false",
            "--creds",
            f"{world.registry.username}:{world.registry.password}",
            "localhost/modelops/modelops-service:0.1.0",
            f"docker://{tagged}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert moved.returncode == 0, moved.stderr[-2000:]
    assert world.registry_client().tag_digest(tagged, world.credentials()) != digest

    def production(name: str, image: str) -> dict[str, Any]:
        doc = world.manifest(name, versions)
        doc["spec"]["image"] = {"reference": image, "pullSecrets": [{"name": SECRET}]}
        doc["spec"]["gate"] = {"requireVerifiedIn": ["staging"]}
        return doc

    world.apply(production("wine-prod-by-tag", tagged))
    waiting = world.wait("wine-prod-by-tag", "PromotionAllowed", status="False")
    assert condition(waiting, "PromotionAllowed")["reason"] == "AwaitingVerification"
    assert "another image" in condition(waiting, "PromotionAllowed")["message"]
    assert world.listed("Pod", "app.kubernetes.io/instance=wine-prod-by-tag") == []

    world.apply(production("wine-prod-by-digest", f"{repository}@{digest}"))
    allowed = world.wait("wine-prod-by-digest")
    assert condition(allowed, "PromotionAllowed")["reason"] == "Verified"
