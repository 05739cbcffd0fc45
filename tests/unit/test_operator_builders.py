"""Pure builders: Deployment, Service, Ingress, HPA and the build Job."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from modelops_contract import CREDENTIAL_KEYS
from modelops_operator.builders.build_job import (
    build_job,
    build_job_name,
    built_image,
    derive_image_tag,
    dockerfile,
    job_state,
)
from modelops_operator.builders.common import OWNER_LABEL, owner_reference, selector_labels
from modelops_operator.builders.deployment import build_deployment, build_env
from modelops_operator.builders.hpa import build_hpa
from modelops_operator.builders.ingress import build_ingress, ingress_url
from modelops_operator.builders.service import build_service, service_url
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import Build, parse_spec
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


def test_baked_image_carries_its_model_uris() -> None:
    env = build_env(spec_of("wine-quality-build.yaml"), models(), baked=True)
    assert not {e["name"] for e in env} & {
        "MODELOPS_PREDICTOR_URI",
        "MODELOPS_DRIFT_URI",
        "MODELOPS_OUTLIER_URI",
    }


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
    assert "FROM svc" not in dockerfile("base:1")
    assert dockerfile("base:1").startswith("FROM base:1\n")


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
    under the runtime's seccomp profile; the model download runs as a non-root user without privileges."""
    spec = spec_of("wine-quality-build.yaml")
    pod = build_job(OWNER, spec, models(), 1)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    for c in [*pod["initContainers"], *pod["containers"]]:
        assert c["resources"]["limits"]["memory"], c["name"]
    fetch = pod["initContainers"][0]["securityContext"]
    assert fetch["runAsNonRoot"] is True
    assert fetch["allowPrivilegeEscalation"] is False
