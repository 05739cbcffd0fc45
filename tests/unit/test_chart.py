"""The Helm chart, through a real helm (built from tools/helm): lint, render, schema, RBAC, hygiene."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm_chart import CHART, REPO_ROOT, RenderError, build_helm, find, one, render, run_helm

NON_DEFAULT = {
    "replicaCount": 2,
    "image": {"repository": "registry.example/modelops-operator", "digest": "sha256:" + "a" * 64},
    "watch": {"namespaces": ["team-a", "team-b"]},
    "peering": {"name": "models", "priority": 100},
    "logFormat": "plain",
    "verbose": True,
    "liveness": {"port": 9090, "path": "/livez"},
    "extraEnv": [{"name": "MODELOPS_EXTRA", "value": "1"}],
    "aliasPollSeconds": 15,
    "clusterName": "staging-eu",
    "promotion": {"verificationCheckSeconds": 5, "gatePollSeconds": 10},
    "drift": {"pollSeconds": 0, "metricsUrlTemplate": "http://proxy.example/{namespace}/{pod}/metrics"},
    "serviceAccount": {"name": "modelops", "annotations": {"azure.workload.identity/client-id": "x"}},
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_helm()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objects, "Deployment")
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules", []):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["default", "non-default"])
def test_helm_lint_strict_passes(helm: Path, home: Path, values: dict[str, Any] | None) -> None:
    args = ["lint", str(CHART), "--strict"]
    if values:
        path = home / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["-f", str(path)]
    result = run_helm(helm, args, home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_default_render_is_a_hardened_cluster_wide_operator(helm: Path, home: Path) -> None:
    objects = render(helm, home)
    assert sorted(o["kind"] for o in objects) == sorted(
        [
            *["ServiceAccount", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding"],
            *["Deployment", "ClusterKopfPeering", "Service"],  # the Service of the operator's /metrics
            *["ClusterRole", "ClusterRole"],  # modelops-editor and modelops-viewer, for tenants
        ]
    )
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["namespace"] == "modelops-system"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(objects)
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in operator["volumeMounts"]
    assert operator["image"] == "modelops/modelops-operator:0.1.0"
    args = operator["args"]
    assert args[:2] == ["-m", "modelops_operator.handlers"]
    assert "--all-namespaces" in args
    assert "--peering=modelops-operator" in args
    assert "--log-format=json" in args
    # The liveness probe asks the endpoint kopf was told to serve.
    liveness = next(a for a in args if a.startswith("--liveness="))
    probe = operator["livenessProbe"]["httpGet"]
    port = next(p for p in operator["ports"] if p["name"] == probe["port"])["containerPort"]
    assert liveness == f"--liveness=http://0.0.0.0:{port}{probe['path']}"
    # Peering without a fixed priority: each Pod draws one, since equal priorities pause everyone.
    assert operator["command"][:2] == ["/bin/sh", "-c"]
    assert '"$@"' in operator["command"][2]
    assert "--priority=" in operator["command"][2]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in operator["env"]
    assert {"name": "MODELOPS_DRIFT_POLL_SECONDS", "value": "60"} in operator["env"]
    assert not [
        e for e in operator["env"] if e["name"] in ("MODELOPS_METRICS_URL_TEMPLATE", "MODELOPS_CLUSTER_NAME")
    ]
    assert {"name": "MODELOPS_GATE_POLL_SECONDS", "value": "30"} in operator["env"]
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "modelops-operator"
    assert not find(objects, "Role")


def test_non_default_values_render_a_namespaced_operator(helm: Path, home: Path) -> None:
    objects = render(helm, home, NON_DEFAULT)
    operator = container(objects)
    assert one(objects, "Deployment")["spec"]["replicas"] == 2
    assert operator["image"] == "registry.example/modelops-operator@sha256:" + "a" * 64
    assert operator["command"] == ["kopf", "run"]
    args = operator["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    assert "--peering=models" in args
    assert "--priority=100" in args
    assert "--log-format=plain" in args
    assert "--verbose" in args
    assert "--liveness=http://0.0.0.0:9090/livez" in args
    assert operator["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {"name": "MODELOPS_EXTRA", "value": "1"} in operator["env"]
    assert {"name": "MODELOPS_ALIAS_POLL_SECONDS", "value": "15"} in operator["env"]
    assert {"name": "MODELOPS_CLUSTER_NAME", "value": "staging-eu"} in operator["env"]
    assert {"name": "MODELOPS_VERIFICATION_CHECK_SECONDS", "value": "5"} in operator["env"]
    assert {"name": "MODELOPS_GATE_POLL_SECONDS", "value": "10"} in operator["env"]
    assert {"name": "MODELOPS_DRIFT_POLL_SECONDS", "value": "0"} in operator["env"]
    template = "http://proxy.example/{namespace}/{pod}/metrics"
    assert {"name": "MODELOPS_METRICS_URL_TEMPLATE", "value": template} in operator["env"]
    assert one(objects, "ServiceAccount")["metadata"]["name"] == "modelops"
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "modelops"

    roles = find(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role)[("kopf.dev", "kopfpeerings")] == {"list", "watch", "patch"}
    bindings = find(objects, "RoleBinding")
    assert {b["metadata"]["namespace"] for b in bindings} == {"team-a", "team-b"}
    assert all(b["subjects"][0]["namespace"] == "modelops-system" for b in bindings)
    # Only the discovery ClusterRole remains: CRDs and namespaces, read-only; no cluster-wide peering.
    (cluster_role,) = [
        r for r in find(objects, "ClusterRole") if not r["metadata"]["name"].startswith("modelops-")
    ]
    assert rules_of(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
    }
    assert sorted(p["metadata"]["namespace"] for p in find(objects, "KopfPeering")) == ["team-a", "team-b"]
    assert not find(objects, "ClusterKopfPeering")


def test_peering_off_runs_standalone_without_peering_objects_or_rules(helm: Path, home: Path) -> None:
    objects = render(helm, home, {"peering": {"enabled": False}})
    operator = container(objects)
    assert operator["command"] == ["kopf", "run"]
    assert "--standalone" in operator["args"]
    assert not any(a.startswith(("--peering", "--priority")) for a in operator["args"])
    assert not find(objects, "ClusterKopfPeering")
    for role in find(objects, "ClusterRole"):
        assert not any(group == "kopf.dev" for group, _ in rules_of(role))


def test_rbac_and_service_account_can_be_left_to_an_administrator(helm: Path, home: Path) -> None:
    objects = render(
        helm, home, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}}
    )
    assert not [o for o in objects if o["kind"].endswith(("Role", "RoleBinding"))]
    assert not find(objects, "ServiceAccount")
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    with pytest.raises(RenderError, match=r"serviceAccount\.name is required"):
        render(helm, home, {"serviceAccount": {"create": False}})


def test_several_replicas_need_peering(helm: Path, home: Path) -> None:
    with pytest.raises(RenderError, match="replicaCount above 1 needs peering"):
        render(helm, home, {"replicaCount": 2, "peering": {"enabled": False}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": -1}, "/replicaCount"),
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"watch": {"namespaces": ["Team_A"]}}, "/watch/namespaces/0"),
        ({"watch": {"namespaces": "team-a"}}, "/watch/namespaces"),
        ({"peering": {"priority": 0}}, "/peering/priority"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"liveness": {"port": 80}}, "/liveness/port"),
        ({"liveness": {"path": "healthz"}}, "/liveness/path"),
        ({"replicas": 2}, "replicas"),
        ({"image": {"tags": "1.0"}}, "tags"),
        ({"rbac": {"create": "yes"}}, "/rbac/create"),
        ({"aliasPollSeconds": 0}, "/aliasPollSeconds"),
        ({"drift": {"pollSeconds": -1}}, "/drift/pollSeconds"),
        ({"drift": {"metricsUrlTemplate": "file:///x"}}, "/drift/metricsUrlTemplate"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_the_values_schema_rejects_bad_values(
    helm: Path, home: Path, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(RenderError) as error:
        render(helm, home, values)
    assert "values don't meet the specifications of the schema" in str(error.value) or "schema" in str(
        error.value
    )
    assert message in str(error.value)


# What the operator's code calls (modelops_operator.kube) and kopf does, mapped to RBAC resources.
OPERATOR_KINDS = {
    "Deployment": ("apps", "deployments"),
    "Service": ("", "services"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "Job": ("batch", "jobs"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "Secret": ("", "secrets"),
    "EndpointSlice": ("discovery.k8s.io", "endpointslices"),
    "ModelDeployment": ("modelops.dev", "modeldeployments"),
    "Pod": ("", "pods"),
    "ReplicaSet": ("apps", "replicasets"),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors"),
    "Middleware": ("traefik.io", "middlewares"),
    "Event": ("", "events"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
}


def test_rbac_covers_every_kind_the_operator_touches_and_no_more(helm: Path, home: Path) -> None:
    from modelops_operator.kube import PLURALS

    assert set(PLURALS) == set(OPERATOR_KINDS), "the operator touches a new kind: extend the chart's RBAC"
    objects = render(helm, home)
    granted = rules_of(one(objects, "ClusterRole", "mo-modelops-operator"))
    for kind, key in OPERATOR_KINDS.items():
        assert key in granted, f"no rule for {kind}"
    applied = {"get", "list", "watch", "create", "patch"}
    # deleted when the spec drops them (a canary's Deployment and Service when it ends, a route's Service)
    for kind in ("Deployment", "Service", "Ingress", "Job", "HorizontalPodAutoscaler"):
        assert granted[OPERATOR_KINDS[kind]] == applied | {"delete"}
    assert granted[("", "secrets")] == {"get"}
    # Applied and removed, never watched (its CRD may be missing).
    assert granted[("monitoring.coreos.com", "podmonitors")] == {"get", "create", "patch", "delete"}
    assert granted[("traefik.io", "middlewares")] == {"get", "create", "patch", "delete"}
    assert granted[("gateway.networking.k8s.io", "httproutes")] == {"get", "create", "patch", "delete"}
    assert granted[("discovery.k8s.io", "endpointslices")] == {"list"}
    assert granted[("", "pods")] == {"list", "watch"}  # read only: failing pods named in the status
    assert granted[("apps", "replicasets")] == {"list"}
    assert granted[("", "events")] == {"create"}
    assert granted[("modelops.dev", "modeldeployments")] == {"get", "list", "watch", "patch"}
    assert granted[("modelops.dev", "modeldeployments/status")] == {"get", "patch"}
    assert granted[("modelops.dev", "modeldeployments/finalizers")] == {"update"}
    extra = (
        set(granted)
        - set(OPERATOR_KINDS.values())
        - {
            ("", "events"),
            ("modelops.dev", "modeldeployments/status"),
            ("modelops.dev", "modeldeployments/finalizers"),
        }
    )
    assert not extra, f"rules beyond what the operator uses: {extra}"
    for role in find(objects, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_crds_ship_in_the_chart_and_render_only_with_include_crds(helm: Path, home: Path) -> None:
    with_crds = render(helm, home, include_crds=True)
    names = {o["metadata"]["name"] for o in find(with_crds, "CustomResourceDefinition")}
    assert names == {"modeldeployments.modelops.dev", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert not find(render(helm, home), "CustomResourceDefinition")
    chart_crd = yaml.safe_load((CHART / "crds" / "modelops.dev_modeldeployments.yaml").read_text())
    repo_crd = yaml.safe_load((REPO_ROOT / "crds" / "modelops.dev_modeldeployments.yaml").read_text())
    assert chart_crd == repo_crd


def documented_keys(lines: list[str]) -> dict[str, bool]:
    """Top-level keys, and the keys of undocumented groups, -> whether a comment sits directly above."""
    keys: dict[str, bool] = {}
    parents: list[str] = []
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        parents = [*parents[:depth], match.group(2)]
        if depth > 1 or (depth == 1 and keys.get(parents[0])):
            continue  # part of a value documented as a whole (resources:, securityContext:)
        above = lines[index - 1].strip() if index else ""
        keys[".".join(parents)] = above.startswith("#")
    return keys


def test_every_value_is_commented_and_in_the_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    documented = documented_keys((CHART / "values.yaml").read_text().splitlines())
    for key, has_comment in documented.items():
        children = [k for k in documented if k.startswith(key + ".")]
        # A group key (image:, liveness:) is documented through each of its values.
        assert has_comment or (children and all(documented[c] for c in children)), f"{key} has no comment"
    assert set(values) == set(schema["properties"])
    for key, value in values.items():
        node = schema["properties"][key]
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            assert set(value) <= set(node["properties"]), key


def test_tenants_get_model_deployments_only_through_the_built_in_roles(helm: Path, home: Path) -> None:
    """modelops-editor is aggregated into edit and admin: a team bound to "edit" in its namespace manages
    its ModelDeployments; the role grants nothing else (no Secrets, no status writes)."""
    objects = render(helm, home)
    editor = next(o for o in find(objects, "ClusterRole") if o["metadata"]["name"] == "modelops-editor")
    labels = editor["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert rules_of(editor) == {
        ("modelops.dev", "modeldeployments"): {"get", "list", "watch", "create", "update", "patch", "delete"},
        ("modelops.dev", "modeldeployments/status"): {"get"},
    }
    assert not [
        r
        for r in find(render(helm, home, {"rbac": {"tenantRoles": False}}), "ClusterRole")
        if r["metadata"]["name"].startswith("modelops-")
    ]


def test_the_operators_write_secrets_are_readable_by_name_in_its_namespace_only(
    helm: Path, home: Path
) -> None:
    objects = render(helm, home, {"registry": {"writeSecrets": {"mlflow.ml.svc:5000": "modelops-writer"}}})
    operator = container(objects)
    assert {
        "name": "MODELOPS_REGISTRY_WRITE_SECRETS",
        "value": "mlflow.ml.svc:5000=modelops-writer",
    } in operator["env"]
    namespace = {
        "name": "MODELOPS_OPERATOR_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }
    assert namespace in operator["env"]
    writer = next(r for r in find(objects, "Role") if r["metadata"]["name"].endswith("-registry-writer"))
    assert writer["metadata"]["namespace"] == "modelops-system"
    assert writer["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["modelops-writer"]}
    ]
