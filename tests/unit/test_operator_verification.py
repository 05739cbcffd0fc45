"""The soak and the gate of staged promotion: pure functions, no server."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import SpecError, parse_spec
from modelops_operator.status import Check
from modelops_operator.verification import (
    gate_check,
    parse_record,
    soak_key,
    soak_step,
    verification_record,
    verified_tag,
)

T0 = dt.datetime(2026, 12, 6, 3, 0, 0, tzinfo=dt.UTC)
MODELS = {
    "predictor": ResolvedModel("wine_quality", "3", "r", "s"),
    "drift": ResolvedModel("wine_quality_drift", "3", "r", "s"),
    "outlier": ResolvedModel("wine_quality_outliers", "3", "r", "s"),
}
KEY = soak_key(2, "img:1", MODELS)
READY = Check.passed("Ready", "ready")


def step(
    previous: dict[str, Any] | None,
    seconds: float,
    serving: Check = READY,
    drift: str | None = "NoDrift",
    key: str = KEY,
    generation: int = 2,
    conclusive_drift: bool = False,
):
    return soak_step(
        previous,
        environment="staging",
        key=key,
        generation=generation,
        soak_seconds=60,
        now=T0 + dt.timedelta(seconds=seconds),
        serving=serving,
        drift_state=drift,
        require_drift_free=True,
        conclusive_drift=conclusive_drift,
    )


def test_soak_starts_when_ready_and_records_after_the_soak() -> None:
    first = step(None, 0)
    assert (first.check.reason, first.record_due, first.entry["since"]) == (
        "Soaking",
        False,
        "2026-12-06T03:00:00Z",
    )
    assert "60 s left" in first.check.message
    middle = step(first.entry, 30)
    assert (middle.check.reason, middle.entry["since"]) == ("Soaking", "2026-12-06T03:00:00Z")
    done = step(middle.entry, 61)
    assert done.record_due
    assert done.check.ok
    recorded = step({**done.entry, "verifiedAt": "2026-12-06T03:01:01Z"}, 500, drift="Drift")
    assert recorded.check.reason == "Recorded"  # once recorded, later drift does not unwrite it
    assert not recorded.record_due


@pytest.mark.parametrize(
    ("serving", "drift", "reason"),
    [
        (Check.waiting("PodsCrashLooping", "pod x"), "NoDrift", "WaitingForReady"),
        (READY, "Drift", "DriftDuringSoak"),
    ],
)
def test_failing_pods_or_drift_restart_the_soak(serving: Check, drift: str, reason: str) -> None:
    soaking = step(None, 0)
    broken = step(soaking.entry, 50, serving=serving, drift=drift)
    assert broken.check.reason == reason
    assert broken.entry["since"] is None
    again = step(broken.entry, 70)
    assert again.check.reason == "Soaking"  # starts over: 70 s after T0 is its new start
    assert again.entry["since"] == "2026-12-06T03:01:10Z"


def test_a_new_generation_or_version_starts_a_new_soak() -> None:
    recorded = {**step(None, 0).entry, "verifiedAt": "2026-12-06T03:01:01Z"}
    moved = {**MODELS, "predictor": ResolvedModel("wine_quality", "4", "r", "s")}
    other = step(recorded, 100, key=soak_key(2, "img:1", moved))
    assert other.check.reason == "Soaking"
    assert other.entry["verifiedAt"] is None


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a status patch."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_a_recorded_soak_leaves_nothing_behind_for_the_next_one() -> None:
    """Stored status is merge-patched: the next generation's entry must remove the old verifiedAt, or
    the next pass would take the new versions for recorded (a bug the GitOps test found)."""
    recorded = {**step(None, 0).entry, "verifiedAt": "2026-12-06T03:01:01Z"}
    moved = {**MODELS, "predictor": ResolvedModel("wine_quality", "4", "r", "s")}

    def look(previous: dict[str, Any], serving: Check) -> Any:
        return step(previous, 100, serving, key=soak_key(3, "img:1", moved), generation=3)

    waiting = look(recorded, Check.waiting("RolloutInProgress", "1/2"))
    stored = merge_patch(recorded, waiting.entry)
    assert "verifiedAt" not in stored
    assert look(stored, READY).check.reason == "Soaking"


def record(environment: str = "staging", models: dict[str, ResolvedModel] = MODELS) -> str:
    return verification_record(
        environment=environment,
        namespace="ml",
        name="wine-staging",
        cluster="staging-eu",
        generation=2,
        image="img:1",
        models=models,
        since="2026-12-06T03:00:00Z",
        until="2026-12-06T03:10:00Z",
        drift_state="NoDrift",
    )


def test_record_names_resource_cluster_versions_and_times() -> None:
    parsed = json.loads(record())
    assert parsed["resource"] == "ml/wine-staging"
    assert parsed["cluster"] == "staging-eu"
    assert parsed["models"]["predictor"] == "wine_quality/3"
    assert (parsed["from"], parsed["to"], parsed["drift"]) == (
        "2026-12-06T03:00:00Z",
        "2026-12-06T03:10:00Z",
        "NoDrift",
    )
    assert len(record()) < 5000
    assert parse_record("not json") is None
    assert parse_record('{"models": {}}') is None  # no end of soak: not a record


def test_gate_opens_only_with_a_record_naming_each_version() -> None:
    tag = verified_tag("staging")
    tags = {role: {tag: record()} for role in MODELS}
    assert gate_check(MODELS, tags, ["staging"]).reason == "Verified"
    # A record written for another version (e.g. copied by hand from version 2) does not count.
    older = {**MODELS, "predictor": ResolvedModel("wine_quality", "2", "r", "s")}
    forged = {**tags, "predictor": {tag: record(models=older)}}
    blocked = gate_check(MODELS, forged, ["staging"])
    assert blocked.reason == "AwaitingVerification"
    assert "wine_quality/3 not verified in staging" in blocked.message
    missing = gate_check(MODELS, {role: {} for role in MODELS}, ["staging", "canary"])
    assert "not verified in staging" in missing.message
    assert "not verified in canary" in missing.message
    assert not missing.stalled


BASE = {
    "registry": {"trackingUri": "http://mlflow"},
    "models": {r: {"name": r, "version": "1"} for r in ("predictor", "drift", "outlier")},
    "image": {"reference": "img"},
}


def test_spec_parses_verification_and_gate() -> None:
    spec = parse_spec(
        {
            **BASE,
            "verification": {"environment": "staging", "soakSeconds": 30},
            "gate": {"requireVerifiedIn": ["staging"]},
        }
    )
    assert spec.verification is not None
    assert (
        spec.verification.environment,
        spec.verification.soak_seconds,
        spec.verification.require_drift_free,
    ) == ("staging", 30, True)
    assert spec.gate is not None
    assert spec.gate.environments == ("staging",)
    with pytest.raises(SpecError, match="at least one"):
        parse_spec({**BASE, "gate": {"requireVerifiedIn": []}})


@pytest.mark.parametrize("drift", ["Collecting", "Unknown", None])
def test_an_inconclusive_drift_at_the_end_of_the_soak_records_nothing(drift: str | None) -> None:
    started = step(None, 0).entry
    done = step(started, 61, drift=drift, conclusive_drift=True)
    assert (done.check.reason, done.record_due) == ("DriftInconclusive", False)
    assert done.entry["since"] == started["since"]  # the soak goes on; a clean window records it


def test_the_gate_refuses_a_record_for_another_image_a_short_soak_or_inconclusive_drift() -> None:
    tag = verified_tag("staging")
    digest = "sha256:" + "a" * 64

    def gate(image: str, min_soak: float, **changes: Any) -> str:
        value = json.loads(record())
        value.update({"image": "img:1", "imageDigest": digest, **changes})
        tags = {role: {tag: json.dumps(value)} for role in MODELS}
        return gate_check(MODELS, tags, ["staging"], image, min_soak).reason

    assert gate("img:1", 600) == "Verified"  # the record's soak is 10 minutes
    assert gate(f"repo/img@{digest}", 600) == "Verified"
    assert gate("img:2", 0) == "AwaitingVerification"  # another reference
    assert gate("repo/img@sha256:" + "b" * 64, 0) == "AwaitingVerification"  # a moved tag: other digest
    assert gate("img:1", 601) == "AwaitingVerification"  # shorter than production's floor
    assert gate("img:1", 0, drift="Collecting") == "AwaitingVerification"
    assert gate("img:1", 0, drift="Disabled") == "Verified"
    moved = json.loads(record())
    moved.update({"image": "img:1", "imageDigest": digest})
    tags = {role: {tag: json.dumps(moved)} for role in MODELS}
    assert gate_check(MODELS, tags, ["staging"], "img:1", 0, digest).reason == "Verified"
    other = "sha256:" + "e" * 64  # the tag names another image now
    assert gate_check(MODELS, tags, ["staging"], "img:1", 0, other).reason == "AwaitingVerification"
