"""Pure builders: Deployment, Service, Ingress, HPA and the build Job."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from modelops_contract import CREDENTIAL_KEYS
from modelops_operator.builders.build_job import (
    build_failure,
    build_job,
    build_job_name,
    built_digest,
    built_image,
    derive_image_tag,
    job_state,
    pull_failure,
)
from modelops_operator.builders.common import OWNER_LABEL, owner_reference, selector_labels
from modelops_operator.builders.deployment import build_deployment, build_env
from modelops_operator.builders.hpa import build_hpa
from modelops_operator.builders.ingress import build_ingress, ingress_url
from modelops_operator.builders.service import build_service, service_url
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import Build, SpecError, parse_spec
from modelops_service.model_loader import LABEL_FILE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OWNER = {"metadata": {"name": "wine", "namespace": "ml", "uid": "u-1", "generation": 3}}


def models(version: str = "3", run: str = "r1") -> dict[str, ResolvedModel]:
    names = {"predictor": "wine_quality", "drift": "wine_quality_drift", "outlier": "wine_quality_outliers"}
    return {role: ResolvedModel(name=n, version=version, run_id=run, source="s") for role, n in names.items()}


def spec_of(sample: str, **overrides: object):
    raw = yaml.safe_load((EXAMPLES / sample).read_text())["spec"]
    raw.update(overrides)
    return parse_spec(raw)


def env_map(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_deployment_follows_the_service_contract() -> None:
    spec = spec_of("wine-quality-staging.yaml", registry={"trackingUri": "http://mlflow:5000"})
    dep = build_deployment(OWNER, spec, models(), "img:1")
    env = env_map(dep)
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["MODELOPS_PREDICTOR_URI"]["value"] == "models:/wine_quality/3"
    assert env["MODELOPS_DRIFT_URI"]["value"] == "models:/wine_quality_drift/3"
    assert env["MODELOPS_OUTLIER_URI"]["value"] == "models:/wine_quality_outliers/3"
    assert env["MODELOPS_MONITORING_ENABLED"]["value"] == "true"
    assert env["MODELOPS_DRIFT_WINDOW_SIZE"]["value"] == "500"
    assert env["OMP_NUM_THREADS"]["value"] == "1"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 3000
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert dep["spec"]["replicas"] == 1
    assert dep["metadata"]["ownerReferences"] == [owner_reference(OWNER)]
    assert dep["spec"]["selector"]["matchLabels"] == selector_labels("wine")
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"


def test_deployment_is_hardened() -> None:
    dep = build_deployment(OWNER, spec_of("wine-quality-staging.yaml"), models(), "img:1")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["automountServiceAccountToken"] is False


def test_credentials_come_from_the_secret_never_inline() -> None:
    spec = spec_of("wine-quality-production.yaml")
    env = build_env(spec, models(), baked=False)
    for key in CREDENTIAL_KEYS:
        entry = next(e for e in env if e["name"] == key)
        assert "value" not in entry
        assert entry["valueFrom"]["secretKeyRef"] == {
            "name": "mlflow-credentials",
            "key": key,
            "optional": True,
        }


def test_no_credentials_without_a_secret() -> None:
    names = {e["name"] for e in build_env(spec_of("wine-quality-staging.yaml"), models(), baked=False)}
    assert not names & set(CREDENTIAL_KEYS)


def test_new_version_changes_the_pod_template() -> None:
    spec = spec_of("wine-quality-staging.yaml")
    a = build_deployment(OWNER, spec, models("3"), "img:1")
    b = build_deployment(OWNER, spec, models("4"), "img:1")
    assert a["spec"]["template"] != b["spec"]["template"]
    assert a["spec"]["selector"] == b["spec"]["selector"]  # selectors are immutable


def test_pod_metadata_is_added_and_the_operator_keys_win() -> None:
    user_labels = {"team": "risk", "app.kubernetes.io/instance": "other", OWNER_LABEL: "other"}
    user_annotations = {"kwok.modelops.dev/crash-loop": "true", "prometheus.io/port": "1"}
    spec = spec_of(
        "wine-quality-staging.yaml",
        podMetadata={"labels": user_labels, "annotations": user_annotations},
        progressDeadlineSeconds=45,
    )
    dep = build_deployment(OWNER, spec, models(), "img:1")
    template = dep["spec"]["template"]["metadata"]
    assert template["labels"]["team"] == "risk"
    assert template["labels"]["app.kubernetes.io/instance"] == "wine"
    assert template["labels"][OWNER_LABEL] == "wine"
    for key, value in selector_labels("wine").items():  # the Deployment still selects its own pods
        assert template["labels"][key] == value
    assert template["annotations"]["kwok.modelops.dev/crash-loop"] == "true"
    assert template["annotations"]["prometheus.io/port"] == "3000"
    assert "team" not in dep["metadata"]["labels"]  # pod metadata only, not the Deployment's
    assert dep["spec"]["progressDeadlineSeconds"] == 45


def test_default_progress_deadline() -> None:
    dep = build_deployment(OWNER, spec_of("wine-quality-staging.yaml"), models(), "img:1")
    assert dep["spec"]["progressDeadlineSeconds"] == 600
    assert "team" not in dep["spec"]["template"]["metadata"]["labels"]


def test_same_inputs_build_the_same_object() -> None:
    spec = spec_of("wine-quality-production.yaml")
    assert build_deployment(OWNER, spec, models(), "i") == build_deployment(OWNER, spec, models(), "i")


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    spec = spec_of("wine-quality-production.yaml")
    dep = build_deployment(OWNER, spec, models(), "img")
    assert "replicas" not in dep["spec"]
    assert spec.autoscaling is not None
    hpa = build_hpa(OWNER, spec.autoscaling)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "wine"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)


def test_baked_image_carries_its_model_uris_and_its_pods_no_registry_credentials() -> None:
    spec = dataclasses.replace(
        spec_of("wine-quality-build.yaml"),
        registry=dataclasses.replace(
            spec_of("wine-quality-build.yaml").registry, credentials_secret="mlflow"
        ),
    )
    names = {e["name"] for e in build_env(spec, models(), baked=True)}
    assert not names & {"MODELOPS_PREDICTOR_URI", "MODELOPS_DRIFT_URI", "MODELOPS_OUTLIER_URI"}
    assert not names & {*CREDENTIAL_KEYS, "MLFLOW_TRACKING_URI"}
    pulled = {e["name"] for e in build_env(spec, models(), baked=False)}
    assert pulled >= {*CREDENTIAL_KEYS, "MLFLOW_TRACKING_URI", "MODELOPS_PREDICTOR_URI"}


def test_service_selects_the_pods() -> None:
    svc = build_service(OWNER)
    assert svc["spec"]["selector"] == selector_labels("wine")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["metadata"]["labels"][OWNER_LABEL] == "wine"
    assert service_url(OWNER) == "http://wine.ml.svc"


@pytest.mark.parametrize(
    ("sample", "url", "tls", "cls"),
    [
        ("wine-quality-staging.yaml", "http://wine-staging.modelops.local/", None, None),
        ("wine-quality-production.yaml", "https://wine.example.com/", "wine-example-com-tls", "nginx"),
    ],
)
def test_ingress(sample: str, url: str, tls: str | None, cls: str | None) -> None:
    spec = spec_of(sample)
    assert spec.ingress is not None
    ing = build_ingress(OWNER, spec.ingress)
    rule = ing["spec"]["rules"][0]
    assert rule["host"] == spec.ingress.host
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "wine", "port": {"number": 80}}
    assert ing["spec"].get("ingressClassName") == cls
    assert (ing["spec"]["tls"][0]["secretName"] if tls else None) == tls
    assert ingress_url(spec.ingress) == url


BUILD = Build(repository="reg.local/wine", base_image="svc:1")


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ((models("3"), BUILD), (models("3"), BUILD), True),
        ((models("3"), BUILD), (models("4"), BUILD), False),
        ((models("3", "r1"), BUILD), (models("3", "r2"), BUILD), False),
        ((models("3"), BUILD), (models("3"), Build(repository="reg.local/wine", base_image="svc:2")), False),
        ((models("3"), BUILD), (models("3"), Build(repository="other/wine", base_image="svc:1")), True),
    ],
)
def test_image_tag_is_deterministic(left, right, same: bool) -> None:
    assert (derive_image_tag(*left) == derive_image_tag(*right)) is same


def test_image_tag_shape() -> None:
    tag = derive_image_tag(models("12"), BUILD)
    assert tag.startswith("p12-d12-o12-")
    assert len(tag) <= 128
    assert built_image(models("12"), BUILD) == f"reg.local/wine:{tag}"
    assert len(build_job_name("x" * 52, tag)) <= 63


def test_build_job() -> None:
    spec = spec_of("wine-quality-build.yaml")
    job = build_job(OWNER, spec, models(), generation=3)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    args = pod["containers"][0]["args"]
    assert f"--destination={built_image(models(), spec.image.build)}" in args
    fetch = pod["initContainers"][0]["command"][-1]
    assert "models:/wine_quality/3" in fetch
    # The baked image names its versions through the label file the service reads.
    assert f"printf %s wine_quality/3 > /workspace/models/predictor/{LABEL_FILE}" in fetch
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector_labels("wine").items() <= labels.items()  # never selected by the Service
    # The baked image points the service at its models; the layer goes where those point.
    assert "--env=MODELOPS_PREDICTOR_URI=/opt/modelops/models/predictor" in args
    assert "--layer=/workspace/models:/opt/modelops/models" in args
    assert not any(a.startswith("--plain-http") for a in args)  # TLS unless the operator says otherwise
    plain = build_job(OWNER, spec, models(), 3, plain_http={"10.0.0.1:5000"})
    assert "--plain-http=10.0.0.1:5000" in plain["spec"]["template"]["spec"]["containers"][0]["args"]


def test_push_credentials_reach_the_builder_as_a_file_only() -> None:
    """The push Secret is mounted read-only as $DOCKER_CONFIG/config.json: never an argument or a value."""
    spec = spec_of("wine-quality-build.yaml")
    assert spec.image.build is not None
    assert spec.image.build.push_secret
    pod = build_job(OWNER, spec, models(), 1)["spec"]["template"]["spec"]
    bake = pod["containers"][0]
    secret = next(v for v in pod["volumes"] if v["name"] == "push-secret")
    assert secret["secret"]["secretName"] == spec.image.build.push_secret
    mount = next(m for m in bake["volumeMounts"] if m["name"] == "push-secret")
    assert mount["readOnly"] is True
    assert bake["env"] == [{"name": "DOCKER_CONFIG", "value": mount["mountPath"]}]
    assert not any(spec.image.build.push_secret in a for a in bake["args"])


def pod_with(init: dict | None = None, bake: dict | None = None) -> dict:
    """A build pod's status: each container terminated as given."""
    status: dict = {}
    if init is not None:
        status["initContainerStatuses"] = [{"name": "fetch-models", "state": {"terminated": init}}]
    if bake is not None:
        status["containerStatuses"] = [{"name": "bake", "state": {"terminated": bake}}]
    return {"status": status}


def test_the_digest_comes_from_a_successful_builder_only() -> None:
    digest = "sha256:" + "ab" * 32
    assert built_digest(pod_with(bake={"exitCode": 0, "message": digest + "\n"})) == digest
    assert built_digest(pod_with(bake={"exitCode": 0, "message": "sha256:xyz"})) is None
    assert built_digest(pod_with(bake={"exitCode": 0, "message": digest + " and more"})) is None
    assert built_digest(pod_with(bake={"exitCode": 4, "message": digest})) is None
    assert built_digest(pod_with()) is None


@pytest.mark.parametrize(
    ("init", "bake", "reason"),
    [
        ({"exitCode": 1, "reason": "Error"}, None, "ModelDownloadFailed"),
        ({"exitCode": 137, "reason": "OOMKilled"}, None, "BuilderOOM"),
        ({"exitCode": 0}, {"exitCode": 137, "reason": "OOMKilled"}, "BuilderOOM"),
        ({"exitCode": 0}, {"exitCode": 3, "message": "base image: MANIFEST_UNKNOWN"}, "BaseImageMissing"),
        ({"exitCode": 0}, {"exitCode": 4, "message": "push: UNAUTHORIZED"}, "CredentialsRefused"),
        ({"exitCode": 0}, {"exitCode": 6, "message": "push: dial tcp: refused"}, "RegistryFailed"),
        ({"exitCode": 0}, {"exitCode": 1, "message": "panic"}, "BuildFailed"),
    ],
)
def test_a_failed_build_is_named_by_its_pod(init: dict, bake: dict | None, reason: str) -> None:
    failure = build_failure(pod_with(init, bake))
    assert failure is not None
    assert failure[0] == reason


def test_an_image_the_node_cannot_pull_fails_the_build_at_once() -> None:
    """The base image runs the init container, so a missing one shows as a pull failure, not an exit."""
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "not found " * 100}}
    pod = {
        "status": {"initContainerStatuses": [{"name": "fetch-models", "image": "r/base:1", "state": waiting}]}
    }
    failure = pull_failure(pod)
    assert failure is not None
    assert failure[0] == "BaseImageUnavailable"
    assert len(failure[1]) < 400
    builder = {
        "status": {"containerStatuses": [{"name": "bake", "state": {"waiting": {"reason": "ErrImagePull"}}}]}
    }
    assert pull_failure(builder) == ("BuilderImageUnavailable", ": ErrImagePull: ")
    assert pull_failure({"status": {"initContainerStatuses": [{"state": {"running": {}}}]}}) is None


def test_a_long_builder_message_is_cut_short() -> None:
    failure = build_failure(pod_with({"exitCode": 0}, {"exitCode": 4, "message": "x" * 5000}))
    assert failure is not None
    assert len(failure[1]) < 400
    assert build_failure(pod_with({"exitCode": 0}, {"exitCode": 0})) is None


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ([], "running"),
        ([{"type": "Complete", "status": "True"}], "succeeded"),
        ([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], "failed"),
        ([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}], "timedout"),
        ([{"type": "Failed", "status": "False"}], "running"),
    ],
)
def test_job_state(conditions: list, state: str) -> None:
    assert job_state({"status": {"conditions": conditions}})[0] == state


def test_missing_job() -> None:
    assert job_state(None)[0] == "missing"


def test_only_allowed_ingress_annotations_are_copied() -> None:
    """A tenant's snippet annotation never reaches the shared controller; cert-manager's does."""
    from modelops_operator.builders.ingress import DEFAULT_ANNOTATION_PREFIXES, permitted_annotations

    spec = spec_of("wine-quality-staging.yaml")
    assert spec.ingress is not None
    annotations = (
        ("cert-manager.io/cluster-issuer", "letsencrypt"),
        ("nginx.ingress.kubernetes.io/configuration-snippet", "more_set_headers 'x: y';"),
    )
    ingress = dataclasses.replace(spec.ingress, annotations=annotations)
    assert build_ingress(OWNER, ingress)["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "letsencrypt"
    }
    kept, left_out = permitted_annotations(annotations, DEFAULT_ANNOTATION_PREFIXES)
    assert left_out == ["nginx.ingress.kubernetes.io/configuration-snippet"]
    everything = build_ingress(OWNER, ingress, ("*",))["metadata"]["annotations"]
    assert set(everything) == {k for k, _ in annotations}
    assert kept == {"cert-manager.io/cluster-issuer": "letsencrypt"}


def test_the_build_pod_is_bounded() -> None:
    """Both containers have resources (a build is OOM-killed and fails, not the node) and the pod runs
    under the runtime's seccomp profile; both run as non-root users without privileges (the `restricted`
    Pod Security Standard, which tests/cluster/test_real_node_build.py enforces on a namespace)."""
    spec = spec_of("wine-quality-build.yaml")
    pod = build_job(OWNER, spec, models(), 1)["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in [*pod["initContainers"], *pod["containers"]]:
        assert c["resources"]["limits"]["memory"], c["name"]
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert c["securityContext"]["runAsUser"] > 0, c["name"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, c["name"]
    fetch = pod["initContainers"][0]["securityContext"]
    assert fetch["runAsNonRoot"] is True
    assert fetch["allowPrivilegeEscalation"] is False


def test_with_traefik_the_ingress_names_its_retry_middleware_first() -> None:
    from modelops_operator.builders.ingress import TRAEFIK_MIDDLEWARES, build_retry_middleware

    spec = spec_of("wine-quality-staging.yaml")
    assert spec.ingress is not None
    middleware = build_retry_middleware(OWNER)
    assert (middleware["kind"], middleware["metadata"]["name"]) == ("Middleware", "wine")
    assert middleware["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert middleware["spec"] == {"retry": {"attempts": 40, "initialInterval": "50ms"}}
    plain = build_ingress(OWNER, spec.ingress)
    assert TRAEFIK_MIDDLEWARES not in (plain["metadata"].get("annotations") or {})
    retried = build_ingress(OWNER, spec.ingress, retry=True)
    assert retried["metadata"]["annotations"][TRAEFIK_MIDDLEWARES] == "ml-wine@kubernetescrd"
    # A tenant's own middlewares stay, after the retry.
    own = dataclasses.replace(spec.ingress, annotations=((TRAEFIK_MIDDLEWARES, "ml-auth@kubernetescrd"),))
    chained = build_ingress(OWNER, own, retry=True)["metadata"]["annotations"][TRAEFIK_MIDDLEWARES]
    assert chained == "ml-wine@kubernetescrd,ml-auth@kubernetescrd"


def routed_spec(**route: object):
    raw = yaml.safe_load((EXAMPLES / "wine-quality-staging.yaml").read_text())["spec"]
    del raw["ingress"]
    raw["route"] = {
        "gateway": {"name": "shared", "namespace": "gateways"},
        "hostnames": ["wine.example"],
        **route,
    }
    return parse_spec(raw)


def test_a_route_weighs_the_stable_and_the_canary_services_exactly() -> None:
    from modelops_operator.builders.route import build_http_route, build_track_service, route_url

    spec = routed_spec()
    assert spec.route is not None
    plain = build_http_route(OWNER, spec.route)
    assert plain["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert plain["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "gateways"}
    ]
    assert plain["spec"]["hostnames"] == ["wine.example"]
    (rule,) = plain["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [{"name": "wine-stable", "port": 80, "weight": 100}]
    assert "filters" not in rule
    canary = build_http_route(OWNER, spec.route, canary_weight=25, retry=True)["spec"]["rules"][0]
    assert canary["backendRefs"] == [
        {"name": "wine-stable", "port": 80, "weight": 75},
        {"name": "wine-canary", "port": 80, "weight": 25},
    ]
    assert canary["filters"] == [
        {
            "type": "ExtensionRef",
            "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": "wine"},
        }
    ]
    stable, challenger = build_track_service(OWNER, "stable"), build_track_service(OWNER, "canary")
    assert stable["metadata"]["name"] == "wine-stable"
    assert stable["spec"]["selector"] == {**selector_labels("wine"), "modelops.dev/track": "stable"}
    assert challenger["metadata"]["name"] == "wine-canary"
    assert challenger["spec"]["selector"]["modelops.dev/track"] == "canary"
    assert route_url(spec.route, "fallback") == "http://wine.example/"
    # The stable pods carry their track only when a route must select them apart (no roll otherwise).
    labels = build_deployment(OWNER, spec, models(), "img")["spec"]["template"]["metadata"]["labels"]
    assert labels["modelops.dev/track"] == "stable"
    plain_spec = spec_of("wine-quality-staging.yaml")
    plain_labels = build_deployment(OWNER, plain_spec, models(), "img")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert "modelops.dev/track" not in plain_labels


def test_a_route_and_an_ingress_exclude_each_other() -> None:
    raw = yaml.safe_load((EXAMPLES / "wine-quality-staging.yaml").read_text())["spec"]
    raw["route"] = {"gateway": {"name": "shared"}}
    with pytest.raises(SpecError, match="route and ingress exclude each other"):
        parse_spec(raw)
