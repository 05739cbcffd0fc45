"""kstatus conditions computed from observations."""

import pytest

from modelops_operator.status import (
    Check,
    compute_conditions,
    container_failures,
    current_template_hash,
    deployment_check,
    explain_rollout,
    ingress_check,
    is_failing,
    rollout_of,
    status_changed,
)

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def deployment(replicas=2, updated=2, available=2, total=2, ready=None, gen=1, observed=1, conditions=()):
    return {
        "metadata": {"generation": gen},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"b": "2", "a": "1"}}},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available if ready is None else ready,
            "replicas": total,
            "conditions": list(conditions),
        },
    }


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": "too slow",
}


@pytest.mark.parametrize(
    ("dep", "ok", "stalled", "reason"),
    [
        (None, False, False, "DeploymentMissing"),
        (deployment(), True, False, "DeploymentAvailable"),
        (deployment(gen=2, observed=1), False, False, "RolloutPending"),
        (deployment(updated=1), False, False, "RollingOut"),
        (deployment(total=3), False, False, "RollingOut"),
        # crash-looping pods: updated but not available
        (deployment(available=0), False, False, "PodsNotReady"),
        (deployment(available=1, conditions=[DEADLINE]), False, True, "ProgressDeadlineExceeded"),
        (deployment(replicas=0, updated=0, available=0, total=0), True, False, "ScaledToZero"),
    ],
)
def test_deployment_check(dep, ok: bool, stalled: bool, reason: str) -> None:
    check = deployment_check(dep)
    assert (check.ok, check.stalled, check.reason) == (ok, stalled, reason)


def test_rollout_counts_and_selector() -> None:
    r = rollout_of(deployment(replicas=3, updated=2, available=1, total=4, ready=1))
    assert (r.desired, r.updated, r.available, r.total, r.ready) == (3, 2, 1, 4, 1)
    assert r.selector == "a=1,b=2"
    assert rollout_of(None).selector == ""


@pytest.mark.parametrize(
    ("expected", "ingress", "ok", "reason"),
    [
        (False, None, True, "NotRequested"),
        (True, None, False, "IngressMissing"),
        (True, {"status": {}}, True, "IngressApplied"),
        (True, {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}, True, "AddressAssigned"),
    ],
)
def test_ingress_check(expected: bool, ingress, ok: bool, reason: str) -> None:
    check = ingress_check(expected, ingress)
    assert (check.ok, check.reason) == (ok, reason)


ALL_OK = {
    "ModelsResolved": Check.passed("Resolved", "m/1"),
    "ImageReady": Check.passed("ImageReference", "img"),
    "Available": Check.passed("DeploymentAvailable", "1/1"),
    "IngressReady": Check.passed("NotRequested", "-"),
    "RegistrySynced": Check.passed("Synced", "ok"),
}


def types(conditions):
    return [(c["type"], c["status"], c["reason"]) for c in conditions]


def test_ready_when_everything_passes() -> None:
    conditions = compute_conditions(4, ALL_OK, "serving", [], NOW)
    assert types(conditions)[0] == ("Ready", "True", "Ready")
    assert not {"Reconciling", "Stalled"} & {c["type"] for c in conditions}
    assert all(c["observedGeneration"] == 4 for c in conditions)
    assert conditions[0]["message"] == "serving"


@pytest.mark.parametrize(
    ("detail", "check", "extra"),
    [
        ("Available", Check.waiting("PodsNotReady", "0/1"), ("Reconciling", "True", "PodsNotReady")),
        ("ModelsResolved", Check.stuck("ModelNotFound", "no v9"), ("Stalled", "True", "ModelNotFound")),
        (
            "ModelsResolved",
            Check.waiting("RegistryUnreachable", "down"),
            ("Reconciling", "True", "RegistryUnreachable"),
        ),
        ("ImageReady", Check.stuck("BuildFailed", "x"), ("Stalled", "True", "BuildFailed")),
        (
            "Available",
            Check.stuck("ProgressDeadlineExceeded", "x"),
            ("Stalled", "True", "ProgressDeadlineExceeded"),
        ),
    ],
)
def test_not_ready_names_the_reason(detail: str, check: Check, extra: tuple) -> None:
    conditions = compute_conditions(1, {**ALL_OK, detail: check}, "serving", [], NOW)
    assert types(conditions)[0] == ("Ready", "False", check.reason)
    assert types(conditions)[1] == extra
    other = "Stalled" if extra[0] == "Reconciling" else "Reconciling"
    assert other not in {c["type"] for c in conditions}


def test_registry_sync_failure_keeps_ready() -> None:
    details = {**ALL_OK, "RegistrySynced": Check.waiting("SyncFailed", "down")}
    conditions = compute_conditions(1, details, "serving", [], NOW)
    assert types(conditions)[0] == ("Ready", "True", "Ready")
    assert ("RegistrySynced", "False", "SyncFailed") in types(conditions)


def test_transition_time_kept_while_status_unchanged() -> None:
    first = compute_conditions(1, ALL_OK, "m", [], NOW)
    again = compute_conditions(2, ALL_OK, "m", first, LATER)
    assert all(c["lastTransitionTime"] == NOW for c in again)
    flipped = compute_conditions(
        3, {**ALL_OK, "Available": Check.waiting("PodsNotReady", "0/1")}, "m", again, LATER
    )
    by_type = {c["type"]: c for c in flipped}
    assert by_type["Ready"]["lastTransitionTime"] == LATER
    assert by_type["ModelsResolved"]["lastTransitionTime"] == NOW


@pytest.mark.parametrize(
    ("current", "desired", "changed"),
    [
        ({"a": 1}, {"a": 1}, False),
        ({"a": 1, "b": 2}, {"a": 1}, False),
        ({"a": 1}, {"a": 2}, True),
        ({"a": 1}, {"a": None}, True),
        ({}, {"a": None}, False),
        (None, {"a": 1}, True),
    ],
)
def test_status_changed(current, desired, changed: bool) -> None:
    assert status_changed(current, desired) is changed


def pod(name="wine-abc", reason="CrashLoopBackOff", restarts=5, message="", last=True, init=False):
    """A pod as a kubelet (or kwok's crash-loop stage) reports it; reason None means running and ready."""
    state = {"running": {}} if reason is None else {"waiting": {"reason": reason, "message": message}}
    container = {"name": "model-server", "ready": reason is None, "restartCount": restarts, "state": state}
    if last:
        container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    status: dict = {"phase": "Running", "containerStatuses": [container]}
    if init:
        ok = {"name": "model-server", "state": {"running": {}}, "restartCount": 0}
        status = {"phase": "Pending", "initContainerStatuses": [dict(container, name="fetch")]}
        status["containerStatuses"] = [ok]
    return {"metadata": {"name": name, "labels": {"pod-template-hash": "h2"}}, "status": status}


@pytest.mark.parametrize(
    ("waiting", "reason"),
    [
        ("CrashLoopBackOff", "PodsCrashLooping"),
        ("ImagePullBackOff", "ImagePullFailed"),
        ("ErrImagePull", "ImagePullFailed"),
        ("InvalidImageName", "ImagePullFailed"),
        ("CreateContainerConfigError", "PodsFailing"),
        ("CreateContainerError", "PodsFailing"),
        ("RunContainerError", "PodsFailing"),
    ],
)
def test_failing_waiting_reasons(waiting: str, reason: str) -> None:
    (failure,) = container_failures(pod(reason=waiting))
    assert (failure.pod, failure.container, failure.reason) == ("wine-abc", "model-server", reason)
    assert is_failing(pod(reason=waiting))


@pytest.mark.parametrize("waiting", [None, "ContainerCreating", "PodInitializing"])
def test_starting_or_running_pods_are_not_failing(waiting: str | None) -> None:
    assert container_failures(pod(reason=waiting, restarts=0, last=False)) == []
    assert not is_failing(pod(reason=waiting))
    assert not is_failing({"metadata": {"name": "new"}})  # no status yet


def test_crash_loop_is_described_with_restarts_and_last_exit() -> None:
    (failure,) = container_failures(pod(restarts=5))
    assert failure.describe() == (
        "pod wine-abc: container model-server CrashLoopBackOff (5 restarts; last exit code 1, Error)"
    )
    (once,) = container_failures(pod(restarts=1))
    assert "(1 restart;" in once.describe()


def test_other_failures_carry_the_kubelet_message() -> None:
    (failure,) = container_failures(
        pod(reason="CreateContainerConfigError", restarts=0, message='secret "creds" not found', last=False)
    )
    assert failure.describe() == (
        "pod wine-abc: container model-server CreateContainerConfigError "
        '(0 restarts; secret "creds" not found)'
    )


def test_failing_init_container_is_found() -> None:
    (failure,) = container_failures(pod(init=True))
    assert (failure.container, failure.reason) == ("fetch", "PodsCrashLooping")


def test_current_template_hash_follows_the_deployment_revision() -> None:
    dep = deployment()
    dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}

    def rs(revision: str, template_hash: str) -> dict:
        return {
            "metadata": {
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "labels": {"pod-template-hash": template_hash},
            }
        }

    assert current_template_hash(dep, [rs("1", "h1"), rs("2", "h2")]) == "h2"
    assert current_template_hash(dep, [rs("1", "h1")]) is None  # not created yet
    assert current_template_hash(deployment(), [rs("1", "h1")]) is None  # no revision yet


def test_rollout_waiting_on_a_crash_loop_names_the_pod() -> None:
    check = explain_rollout(
        deployment_check(deployment(available=0)), [pod("wine-b"), pod("wine-a", restarts=2)]
    )
    assert (check.ok, check.stalled, check.reason) == (False, False, "PodsCrashLooping")
    assert check.message == (
        "0/2 pods available; pod wine-a: container model-server CrashLoopBackOff (2 restarts; "
        "last exit code 1, Error) (and 1 more failing pods)"
    )


def test_stalled_rollout_keeps_its_reason_and_names_the_crash() -> None:
    deadline = dict(DEADLINE, message='ReplicaSet "wine-h2" has timed out progressing.')
    check = explain_rollout(deployment_check(deployment(available=0, conditions=[deadline])), [pod()])
    assert (check.ok, check.stalled, check.reason) == (False, True, "ProgressDeadlineExceeded")
    assert check.message == (
        'rollout stalled: ReplicaSet "wine-h2" has timed out progressing; '
        "pod wine-abc: container model-server CrashLoopBackOff (5 restarts; last exit code 1, Error)"
    )


def test_explanation_needs_a_failing_pod_and_a_check_that_is_not_ok() -> None:
    waiting = deployment_check(deployment(available=0))
    assert explain_rollout(waiting, [pod(reason=None)]) == waiting
    assert explain_rollout(waiting, []) == waiting
    available = deployment_check(deployment())
    assert explain_rollout(available, [pod()]) == available


def test_crash_loop_status_is_reconciling_and_never_ready() -> None:
    details = {"Available": explain_rollout(deployment_check(deployment(available=0)), [pod()])}
    ready, reconciling, _ = compute_conditions(1, details, "x", [], NOW)
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "PodsCrashLooping")
    assert (reconciling["type"], reconciling["reason"]) == ("Reconciling", "PodsCrashLooping")
    assert "pod wine-abc" in ready["message"]
