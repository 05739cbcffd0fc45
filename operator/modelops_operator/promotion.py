"""The sync step of the recipe (reconciler.py), the registry write-back once a deployment is available:
stage, alias and where/when-deployed tags (RegistrySynced, never holding Ready back)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from modelops_operator import status as st
from modelops_operator.registry import RegistryClient, RegistryError, ResolvedModel
from modelops_operator.registry_access import CredentialsMissing
from modelops_operator.spec import DeploymentSpec
from modelops_operator.steps import Pass, Step

DEPLOYED_AT_TAG = "modelops.deployed_at"
DEPLOYMENT_TAG_PREFIX = "modelops.deployment"
DETAIL = "RegistrySynced"


def promotion_requested(spec: DeploymentSpec) -> bool:
    """Whether the spec asks for any registry write (a stage or an alias)."""
    return bool(spec.stage or spec.promotion.alias)


def sync_key(namespace: str, name: str, spec: DeploymentSpec, models: Mapping[str, ResolvedModel]) -> str:
    """What a write-back records; equal keys mean nothing new to write (idempotence across reconciles)."""
    identity = {
        "at": f"{namespace}/{name}",
        "stage": spec.stage,
        "alias": spec.promotion.alias,
        "archive": spec.promotion.archive_existing_versions,
        "models": {role: f"{m.name}/{m.version}" for role, m in sorted(models.items())},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def deployment_tags(
    namespace: str, name: str, spec: DeploymentSpec, image: str, url: str, now: str
) -> dict[str, str]:
    """Version tags recording where and when a version was deployed."""
    where = {"namespace": namespace, "name": name, "stage": spec.stage or "", "image": image, "url": url}
    return {
        f"{DEPLOYMENT_TAG_PREFIX}.{namespace}.{name}": json.dumps(
            {**where, "deployedAt": now}, sort_keys=True
        ),
        DEPLOYED_AT_TAG: now,
    }


def promote(
    client: RegistryClient,
    namespace: str,
    name: str,
    spec: DeploymentSpec,
    models: Mapping[str, ResolvedModel],
    image: str,
    url: str,
    now: str,
) -> None:
    """Transition each version to the stage, set the alias and tag it; every call is safe to repeat."""
    tags = deployment_tags(namespace, name, spec, image, url, now)
    for model in models.values():
        if spec.stage:
            client.transition_stage(
                model.name, model.version, spec.stage, spec.promotion.archive_existing_versions
            )
        if spec.promotion.alias:
            client.set_alias(model.name, spec.promotion.alias, model.version)
        for key, value in tags.items():
            client.set_version_tag(model.name, model.version, key, value)


def sync_registry(
    p: Pass, models: Mapping[str, ResolvedModel], available: bool, image: str, url: str
) -> Step[None]:
    """RegistrySynced; a failed write is retried on a fixed delay (and by a timer while it is False)."""
    if not promotion_requested(p.spec):
        return Step(DETAIL, st.Check.passed("NotRequested", "no stage or alias requested"))
    if not available:
        message = "the registry is updated once the deployment is available"
        return Step(DETAIL, st.Check.waiting("WaitingForAvailable", message))
    key = sync_key(p.namespace, p.name, p.spec, models)
    done = f"stage {p.spec.stage or '-'}, alias {p.spec.promotion.alias or '-'} recorded in the registry"
    if p.status.get("registrySyncedKey") == key:
        return Step(DETAIL, st.Check.passed("Synced", done))
    delay = p.settings.sync_retry_seconds
    try:
        promote(p.registry.writer(), p.namespace, p.name, p.spec, models, image, url, st.utcnow())
    except RegistryError as e:
        if isinstance(e, CredentialsMissing):
            return Step(DETAIL, st.Check.retrying(e.reason, "registry credentials Secret not found", delay))
        message = f"registry write-back failed, retrying: {e}"
        return Step(DETAIL, st.Check.retrying("SyncFailed", message, delay))
    return Step(DETAIL, st.Check.passed("Synced", done), fields={"registrySyncedKey": key})
