"""The apply edge's pure parts: paths, digests and the 'already up to date' test."""

import pytest

from modelops_operator.kube import (
    DIGEST_ANNOTATION,
    FIELD_MANAGER,
    apply_owned_fields,
    contains,
    digest,
    object_path,
    up_to_date,
    with_digest,
)


@pytest.mark.parametrize(
    ("api_version", "kind", "name", "path"),
    [
        ("v1", "Service", "s", "/api/v1/namespaces/ns/services/s"),
        ("apps/v1", "Deployment", "d", "/apis/apps/v1/namespaces/ns/deployments/d"),
        ("networking.k8s.io/v1", "Ingress", None, "/apis/networking.k8s.io/v1/namespaces/ns/ingresses"),
        (
            "modelops.dev/v1alpha1",
            "ModelDeployment",
            "m",
            "/apis/modelops.dev/v1alpha1/namespaces/ns/modeldeployments/m",
        ),
    ],
)
def test_object_path(api_version: str, kind: str, name: str | None, path: str) -> None:
    assert object_path(api_version, kind, "ns", name) == path


@pytest.mark.parametrize(
    ("live", "desired", "result"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": [{"x": 1, "d": 0}]}, {"a": [{"x": 1}]}, True),
        ({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1}]}, False),
        ({"a": [{"x": 2}]}, {"a": [{"x": 1}]}, False),
        ({"a": "1"}, {"a": 1}, False),
    ],
)
def test_contains(live, desired, result: bool) -> None:
    assert contains(live, desired) is result


DESIRED = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "s", "namespace": "n"},
    "spec": {"x": 1},
}


def test_up_to_date() -> None:
    live = with_digest(DESIRED)
    live["metadata"]["uid"] = "u"
    live["spec"]["defaulted"] = True
    assert up_to_date(live, DESIRED)
    assert not up_to_date(None, DESIRED)
    edited = {**live, "spec": {"x": 2}}
    assert not up_to_date(edited, DESIRED)
    deleting = {**live, "metadata": {**live["metadata"], "deletionTimestamp": "t"}}
    assert not up_to_date(deleting, DESIRED)


def test_removed_desired_field_is_noticed_through_the_digest() -> None:
    before = {**DESIRED, "spec": {"x": 1, "y": 2}}
    live = with_digest(before)
    assert not up_to_date(live, DESIRED)  # desired no longer sets y: apply again
    assert live["metadata"]["annotations"][DIGEST_ANNOTATION] == digest(before)


def entry(manager: str, operation: str, fields: dict, subresource: str | None = None) -> dict:
    found = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1"}
    found["fieldsV1"] = fields
    if subresource:
        found["subresource"] = subresource
    return found


def test_fields_of_our_create_are_folded_into_our_apply_entry() -> None:
    created = entry(FIELD_MANAGER, "Update", {"f:spec": {"f:replicas": {}, "f:template": {"f:a": {}}}})
    applied = entry(FIELD_MANAGER, "Apply", {"f:spec": {"f:template": {"f:b": {}}}})
    controller = entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status")
    folded = apply_owned_fields([created, controller, applied], FIELD_MANAGER)
    assert folded is not None
    assert folded[0] == controller  # other managers untouched
    (ours,) = folded[1:]
    assert (ours["manager"], ours["operation"]) == (FIELD_MANAGER, "Apply")
    assert ours["fieldsV1"] == {"f:spec": {"f:replicas": {}, "f:template": {"f:a": {}, "f:b": {}}}}


def test_only_a_create_entry_becomes_an_apply_entry() -> None:
    created = entry(FIELD_MANAGER, "Update", {"f:metadata": {"f:labels": {}}})
    assert apply_owned_fields([created], FIELD_MANAGER) == [dict(created, operation="Apply")]


def test_nothing_to_fold_means_no_request() -> None:
    applied = entry(FIELD_MANAGER, "Apply", {"f:spec": {}})
    assert apply_owned_fields([applied, entry("kubectl", "Update", {"f:spec": {}})], FIELD_MANAGER) is None
    assert apply_owned_fields([], FIELD_MANAGER) is None
