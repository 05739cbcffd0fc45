"""The soak step of the recipe (reconciler.py, spec.verification): soak, then write the record.

The soak's pure rules and the record's format are in verification.py; this module reads the pass and
writes the record on each version with the pass's registry client. Never holds Ready back: Verified is
a non-gating detail, and a timer (handlers.py) advances the soak.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from modelops_operator import status as st
from modelops_operator.builders.common import selector_labels
from modelops_operator.builders.deployment import CONTAINER_NAME
from modelops_operator.registry import RegistryError, ResolvedModel
from modelops_operator.registry_access import CredentialsMissing
from modelops_operator.steps import Pass, Step
from modelops_operator.verification import (
    digest_of,
    soak_key,
    soak_step,
    verification_record,
    verified_tag,
    version_list,
)

DETAIL = "Verified"


def verify(p: Pass, models: Mapping[str, ResolvedModel], image: str, serving: st.Check) -> Step[None]:
    """Verified and status.verification: advance the soak; write the record once it is over.

    `serving` is the rollout's gating check for this pass (Report.serving()).
    """
    verification = p.spec.verification
    cleared = {"verification": None} if p.status.get("verification") is not None else {}
    if verification is None:
        return Step(None, st.Check.passed("NotRequested", "no verification requested"), fields=cleared)
    policy = p.settings
    if not policy.may_record(verification.environment, p.namespace):
        message = (
            f"this operator records no verification in {verification.environment} for namespace "
            f"{p.namespace} (its MODELOPS_VERIFICATION_NAMESPACES): nothing is recorded"
        )
        return Step(DETAIL, st.Check.waiting("NotPermitted", message), fields=cleared)
    drift_state = (p.status.get("drift") or {}).get("state") if p.spec.serving.monitoring else None
    step = soak_step(
        p.status.get("verification"),
        environment=verification.environment,
        key=soak_key(p.generation, image, models),
        generation=p.generation,
        # The CR can only make the operator's policy stricter.
        soak_seconds=max(verification.soak_seconds, int(policy.verification_min_soak_seconds)),
        now=dt.datetime.now(dt.UTC),
        serving=serving,
        drift_state=drift_state,
        require_drift_free=verification.require_drift_free or policy.verification_require_drift_free,
        conclusive_drift=p.spec.serving.monitoring,
    )
    check, entry = step.check, step.entry
    if step.record_due:
        now = st.utcnow()
        record = verification_record(
            environment=verification.environment,
            namespace=p.namespace,
            name=p.name,
            cluster=p.settings.cluster_name,
            generation=p.generation,
            image=image,
            models=models,
            since=entry["since"],
            until=now,
            drift_state=drift_state if p.spec.serving.monitoring else "Disabled",
            image_digest=served_digest(p),
        )
        check = record_verification(p, models, verification.environment, record)
        if check.ok:
            entry = {**entry, "verifiedAt": now}
    fields: dict[str, Any] = {"verification": entry}
    return Step(DETAIL, check, fields=fields)


def served_digest(p: Pass) -> str | None:
    """The image digest the serving pods run (their containers' imageID), when they all agree on one."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(selector_labels(p.name).items()))
    digests = {
        digest_of(status.get("imageID"))
        for pod in p.kube.list_objects("v1", "Pod", p.namespace, selector)
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        for status in (pod.get("status") or {}).get("containerStatuses") or ()
        if status.get("name") == CONTAINER_NAME
    }
    return digests.pop() if len(digests) == 1 else None


def record_verification(
    p: Pass, models: Mapping[str, ResolvedModel], environment: str, record: str
) -> st.Check:
    """Write the record on each version; RecordFailed (the soak's timer tries again) when it cannot."""
    try:
        client = p.registry.writer()
        # The predictor last: `modelops promote` looks for the record on the predictor, so once it is
        # there the drift and outlier versions have theirs too.
        for role in sorted(models, key=lambda r: r == "predictor"):
            client.set_version_tag(models[role].name, models[role].version, verified_tag(environment), record)
    except RegistryError as e:
        if isinstance(e, CredentialsMissing):
            return st.Check.waiting(e.reason, "registry credentials Secret not found")
        return st.Check.waiting("RecordFailed", f"soak done; writing the record failed, retrying: {e}")
    return st.Check.passed("Recorded", f"{version_list(models)} verified in {environment}, recorded")
