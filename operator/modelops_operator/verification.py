"""Staged promotion, pure parts: the soak that verifies versions in one environment (spec.verification)
and the gate that requires that record in another (spec.gate). reconciler.py does the I/O.

The record is a registry tag on each model version, `modelops.verified.<environment>`, whose value is
JSON: which resource verified it (namespace/name, cluster), for which generation and image, the three
versions served together, the soak's start and end, and the drift state during it. The registry is the
shared record between environments (separate clusters). What it proves: an operator with write access to
the registry saw these versions Ready, with no failing pods and no window drift, for the whole soak. What it
does not: anyone else who can write registry tags can write the same JSON; the gate trusts the registry's
access control, as MLflow's stages and aliases do.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops_contract import ROLES, VERIFIED_TAG_PREFIX
from modelops_operator.registry import ResolvedModel
from modelops_operator.status import Check

REJECTED_TAG_PREFIX = "modelops.rejected."  # a canary's rollback in an environment (canary.py writes it)

# status.drift.state values that restart the soak (the others: NoDrift, Collecting, Disabled, Unknown).
DRIFTING = "Drift"
CLEAN = "NoDrift"  # the only state that lets a soak with monitoring on be recorded


def verified_tag(environment: str) -> str:
    """The version tag holding the record of `environment`."""
    return f"{VERIFIED_TAG_PREFIX}{environment}"


def version_list(models: Mapping[str, ResolvedModel]) -> str:
    """'wine_quality/3, wine_quality_drift/3, ...' in role order."""
    return ", ".join(f"{models[r].name}/{models[r].version}" for r in ROLES if r in models)


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------- the soak


def soak_key(generation: int, image: str, models: Mapping[str, ResolvedModel]) -> str:
    """What one soak verifies: a new generation, image or version starts a new soak."""
    return f"{generation}|{image}|{version_list(models)}"


@dataclass(frozen=True)
class SoakStep:
    """One look at the soak: the Verified detail, status.verification, and whether to write the record."""

    check: Check
    entry: dict[str, Any]
    record_due: bool


def soak_step(
    previous: Mapping[str, Any] | None,
    *,
    environment: str,
    key: str,
    generation: int,
    soak_seconds: int,
    now: dt.datetime,
    serving: Check,
    drift_state: str | None,
    require_drift_free: bool,
    conclusive_drift: bool = False,
) -> SoakStep:
    """Advance the soak from its status entry (the start survives operator restarts).

    `serving` is the rollout's check (Ready for this generation, no failing pods); `drift_state` the
    pods' window drift as status.drift reports it. Either going wrong restarts the soak; nothing is
    recorded before it has lasted `soak_seconds`, nor (with `conclusive_drift`, monitoring on) while the
    windows have not been tested clean (Unknown or Collecting records nothing; the soak goes on).
    """
    previous = previous or {}
    same = previous.get("key") == key and previous.get("environment") == environment
    # Every key, None where unset: the status is merge-patched, and None removes what an earlier soak left.
    base: dict[str, Any] = {
        "environment": environment,
        "key": key,
        "generation": generation,
        "since": None,
        "verifiedAt": None,
    }
    if same and previous.get("verifiedAt"):
        entry = {**base, "since": previous.get("since"), "verifiedAt": previous["verifiedAt"]}
        return SoakStep(Check.passed("Recorded", _recorded_message(environment, entry)), entry, False)
    if not serving.ok:
        message = (
            f"soak in {environment} starts once the rollout is Ready ({serving.reason}: {serving.message})"
        )
        return SoakStep(Check.waiting("WaitingForReady", message), {**base, "since": None}, False)
    if require_drift_free and drift_state == DRIFTING:
        message = f"window drift in the pods: the soak in {environment} restarts once the windows are clean"
        return SoakStep(Check.waiting("DriftDuringSoak", message), {**base, "since": None}, False)
    since = str(previous["since"]) if same and previous.get("since") else format_time(now)
    entry = {**base, "since": since}
    left = soak_seconds - (now - parse_time(since)).total_seconds()
    if left > 0:
        message = f"soaking in {environment} since {since}: {left:.0f} s left of {soak_seconds} s"
        return SoakStep(Check.waiting("Soaking", message), entry, False)
    if conclusive_drift and drift_state != CLEAN:
        message = (
            f"soak in {environment} done, but the pods' drift is {drift_state or 'not read yet'}: "
            "nothing is recorded until their windows are tested clean"
        )
        return SoakStep(Check.waiting("DriftInconclusive", message), entry, False)
    return SoakStep(Check.passed("Recorded", _recorded_message(environment, entry)), entry, True)


def _recorded_message(environment: str, entry: Mapping[str, Any]) -> str:
    return f"verified in {environment} (soak from {entry.get('since')}), recorded in the registry"


def verification_record(
    *,
    environment: str,
    namespace: str,
    name: str,
    cluster: str,
    generation: int,
    image: str,
    models: Mapping[str, ResolvedModel],
    since: str,
    until: str,
    drift_state: str | None,
    image_digest: str | None = None,
) -> str:
    """The tag value written on each version (compact JSON, well under MLflow's 5000-character limit).

    `image_digest` is what the pods ran (their containers' imageID), when every pod agrees on it.
    """
    record = {
        "imageDigest": image_digest,
        "environment": environment,
        "resource": f"{namespace}/{name}",
        "cluster": cluster,
        "generation": generation,
        "image": image,
        "models": {role: f"{models[role].name}/{models[role].version}" for role in ROLES if role in models},
        "from": since,
        "to": until,
        "drift": drift_state or "Unknown",
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def parse_record(value: str | None) -> dict[str, Any] | None:
    """A record tag's value as a dict, or None when absent or not a record."""
    if not value:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("models"), dict) or not record.get("to"):
        return None
    return record


# --------------------------------------------------------------------------------------------- the gate


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # an image digest, as registries and containerd name it


def digest_of(reference: str | None) -> str | None:
    """The sha256:... digest an image reference or a container's imageID names, if any."""
    found = DIGEST.search(reference or "")
    return found.group(0) if found else None


def record_fits(
    record: Mapping[str, Any], image: str | None, min_soak_seconds: float, tag_digest: str | None = None
) -> bool:
    """Whether a record vouches for what this deployment would run: the same image (by digest when the
    reference is pinned by one, else the same reference, and the same digest when `tag_digest` says
    which one the tag names now), a soak at least `min_soak_seconds` long and conclusive drift (NoDrift,
    or monitoring off)."""
    if image is not None:
        pinned = digest_of(image)
        if pinned is not None and record.get("imageDigest") != pinned:
            return False
        if pinned is None and record.get("image") != image:
            return False
        recorded = record.get("imageDigest")
        if pinned is None and tag_digest is not None and recorded is not None and recorded != tag_digest:
            return False  # the tag moved since the record was written
    if record.get("drift") not in (CLEAN, "Disabled"):
        return False
    try:
        soaked = (parse_time(str(record["to"])) - parse_time(str(record.get("from")))).total_seconds()
    except ValueError:
        return False
    return soaked >= min_soak_seconds


def gate_check(
    models: Mapping[str, ResolvedModel],
    tags: Mapping[str, Mapping[str, str]],
    environments: Sequence[str],
    image: str | None = None,
    min_soak_seconds: float = 0.0,
    tag_digest: str | None = None,
) -> Check:
    """Whether every resolved version carries a record of every required environment that names it and
    fits what would run here (record_fits: image, soak length, conclusive drift)."""
    missing: dict[str, list[str]] = {}
    rejected = [
        f"{models[role].name}/{models[role].version} was rejected by a canary in {environment}"
        for role in ROLES
        if role in models
        for environment in environments
        if f"{REJECTED_TAG_PREFIX}{environment}" in tags.get(role, {})
    ]
    if rejected:
        return Check.waiting(
            "RejectedByCanary",
            f"{'; '.join(rejected)}: not rolled out (delete the registry tag to allow it); "
            "the pods keep serving what they served",
        )
    for role in ROLES:
        if role not in models:
            continue
        label = f"{models[role].name}/{models[role].version}"
        for environment in environments:
            record = parse_record(tags.get(role, {}).get(verified_tag(environment)))
            if record is None or record["models"].get(role) != label:
                missing.setdefault(environment, []).append(label)
            elif not record_fits(record, image, min_soak_seconds, tag_digest):
                missing.setdefault(environment, []).append(
                    f"{label} (its record is for another image, a shorter soak or inconclusive drift)"
                )
    if missing:
        listed = "; ".join(f"{', '.join(labels)} not verified in {env}" for env, labels in missing.items())
        return Check.waiting(
            "AwaitingVerification", f"{listed}: not rolled out; the pods keep serving what they served"
        )
    return Check.passed("Verified", f"{version_list(models)} verified in {', '.join(environments)}")
