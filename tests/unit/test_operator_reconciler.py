"""Parts of the reconcile recipe: moved roles, recorded resolution, failing pods."""

from typing import Any

import pytest

from modelops_operator.registry import ResolvedModel
from modelops_operator.resolution import cached_resolution, moved_roles
from modelops_operator.rollout import explain_unavailable
from modelops_operator.status import Check, deployment_check
from tests.fixtures.kube import MemoryKube


def model(version: str, name: str = "wine_quality") -> ResolvedModel:
    return ResolvedModel(name=name, version=version, run_id="r", source="s", alias="champion")


@pytest.mark.parametrize(
    ("recorded", "current", "expected"),
    [
        ({"predictor": "3", "drift": "3"}, {"predictor": "3"}, []),
        ({"predictor": "3", "drift": "3"}, {"predictor": "4"}, ["predictor"]),
        ({"predictor": "3", "drift": "3"}, {"predictor": "4", "drift": "2"}, ["predictor", "drift"]),
        ({"predictor": "3"}, {"drift": "1"}, ["drift"]),
        ({}, {}, []),
    ],
)
def test_moved_roles(recorded: dict[str, str], current: dict[str, str], expected: list[str]) -> None:
    assert (
        moved_roles({r: model(v) for r, v in recorded.items()}, {r: model(v) for r, v in current.items()})
        == expected
    )


def body(generation: int, resolved_generation: int | None, roles: tuple[str, ...]) -> dict[str, Any]:
    entry = {"name": "m", "version": "7", "runId": "r", "source": "s", "alias": "champion"}
    status: dict[str, Any] = {"models": {role: dict(entry) for role in roles}}
    if resolved_generation is not None:
        status["resolvedGeneration"] = resolved_generation
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("generation", "resolved_generation", "roles", "found"),
    [
        (2, 2, ("predictor", "drift", "outlier"), True),
        (3, 2, ("predictor", "drift", "outlier"), False),  # the spec changed since: not the current one
        (2, None, ("predictor", "drift", "outlier"), False),
        (2, 2, ("predictor", "drift"), False),
    ],
)
def test_cached_resolution_only_for_the_current_generation(
    generation: int, resolved_generation: int | None, roles: tuple[str, ...], found: bool
) -> None:
    resolution = cached_resolution(body(generation, resolved_generation, roles))
    assert (resolution is not None) is found
    if resolution is not None:
        assert resolution.models["predictor"].version == "7"
        assert resolution.models["predictor"].alias == "champion"


def crash_pod(name: str, template_hash: str, reason: str = "CrashLoopBackOff") -> dict[str, Any]:
    waiting = {"state": {"waiting": {"reason": reason}}, "name": "model-server", "restartCount": 3}
    return {
        "metadata": {"name": name, "labels": {"pod-template-hash": template_hash}},
        "status": {"containerStatuses": [waiting]},
    }


def unavailable_deployment() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "wine",
            "namespace": "ml",
            "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "wine"}}},
        "status": {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 1, "availableReplicas": 0},
    }


REPLICA_SETS = [
    {
        "metadata": {
            "annotations": {"deployment.kubernetes.io/revision": r},
            "labels": {"pod-template-hash": h},
        }
    }
    for r, h in (("1", "old"), ("2", "new"))
]


def listing(*pods: dict[str, Any]) -> MemoryKube:
    """The pods given and both ReplicaSets; `listed` records what the code asked for."""
    return MemoryKube().add("Pod", *pods).add("ReplicaSet", *REPLICA_SETS)


def test_unavailable_rollout_names_a_failing_pod_of_the_current_replica_set() -> None:
    kube = (
        MemoryKube()
        .add("Pod", *[crash_pod("wine-old-1", "old"), crash_pod("wine-new-1", "new")])
        .add("ReplicaSet", *REPLICA_SETS)
    )
    deployment = unavailable_deployment()
    check = explain_unavailable(kube, deployment, deployment_check(deployment))
    assert check.reason == "PodsCrashLooping"
    assert "pod wine-new-1" in check.message
    assert "wine-old-1" not in check.message
    assert kube.listed == [("Pod", "app=wine"), ("ReplicaSet", "app=wine")]


def test_old_pods_failing_alone_explain_nothing() -> None:
    kube = listing(crash_pod("wine-old-1", "old"))
    deployment = unavailable_deployment()
    check = explain_unavailable(kube, deployment, deployment_check(deployment))
    assert check.reason == "PodsNotReady"


def test_replica_sets_are_listed_only_when_a_pod_fails() -> None:
    kube = (
        MemoryKube()
        .add("Pod", *[crash_pod("wine-new-1", "new", reason="ContainerCreating")])
        .add("ReplicaSet", *REPLICA_SETS)
    )
    deployment = unavailable_deployment()
    check = explain_unavailable(kube, deployment, deployment_check(deployment))
    assert check.reason == "PodsNotReady"
    assert kube.listed == [("Pod", "app=wine")]


@pytest.mark.parametrize(
    "check",
    [
        Check.passed("DeploymentAvailable", "1/1 pods available"),
        Check.waiting("RolloutPending", "Deployment controller has not seen the new spec yet"),
        Check.waiting("DeploymentMissing", "Deployment not created yet"),
    ],
)
def test_nothing_is_listed_when_available_or_not_yet_rolling(check: Check) -> None:
    kube = listing(crash_pod("wine-new-1", "new"))
    assert explain_unavailable(kube, unavailable_deployment(), check) == check
    assert kube.listed == []
