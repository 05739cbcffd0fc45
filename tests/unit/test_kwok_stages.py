"""The kwok stages of the local control plane: upstream's, and crash-loop stages apart from pod-ready."""

from importlib import resources
from typing import Any

import pytest
import yaml

CRASH_LOOP = '.metadata.annotations["kwok.modelops.dev/crash-loop"]'


@pytest.fixture(scope="module")
def stages() -> dict[str, dict[str, Any]]:
    text = resources.files("modelops_cluster").joinpath("kwok-stages.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert all(d["kind"] == "Stage" for d in docs)
    return {d["metadata"]["name"]: d for d in docs}


def expressions(stage: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {
        e["key"]: (e["operator"], e.get("values", [])) for e in stage["spec"]["selector"]["matchExpressions"]
    }


def test_upstream_stages_are_all_there(stages: dict[str, dict[str, Any]]) -> None:
    upstream = {
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-create",
        "pod-init-container-running",
        "pod-init-container-completed",
        "pod-ready",
        "pod-complete",
        "pod-delete",
    }
    assert upstream | {"pod-crash-loop", "pod-crash-loop-restart"} == set(stages)


def test_pod_ready_leaves_crash_looping_pods_alone(stages: dict[str, dict[str, Any]]) -> None:
    assert expressions(stages["pod-ready"])[CRASH_LOOP] == ("NotIn", ["true"])


@pytest.mark.parametrize("name", ["pod-crash-loop", "pod-crash-loop-restart"])
def test_crash_loop_stages_select_only_annotated_live_pods(
    stages: dict[str, dict[str, Any]], name: str
) -> None:
    selected = expressions(stages[name])
    assert selected[CRASH_LOOP] == ("In", ["true"])
    assert selected[".metadata.deletionTimestamp"] == ("DoesNotExist", [])


def test_first_crash_takes_the_place_of_pod_ready(stages: dict[str, dict[str, Any]]) -> None:
    ready, crash = expressions(stages["pod-ready"]), expressions(stages["pod-crash-loop"])
    assert {k: v for k, v in ready.items() if k != CRASH_LOOP} == {
        k: v for k, v in crash.items() if k != CRASH_LOOP
    }
    template = stages["pod-crash-loop"]["spec"]["next"]["statusTemplate"]
    for text in (
        "phase: Running",
        "reason: CrashLoopBackOff",
        "exitCode: 1",
        "reason: Error",
        "restartCount: 1",
    ):
        assert text in template
    assert 'status: "True"' not in template  # neither Ready nor ContainersReady


def test_restarts_count_up(stages: dict[str, dict[str, Any]]) -> None:
    stage = stages["pod-crash-loop-restart"]
    assert expressions(stage)[".status.containerStatuses.[].state.waiting.reason"] == (
        "In",
        ["CrashLoopBackOff"],
    )
    assert "add1" in stage["spec"]["next"]["statusTemplate"]
    assert stage["spec"]["delay"]["durationMilliseconds"] >= 10000  # a kubelet's first back-off
