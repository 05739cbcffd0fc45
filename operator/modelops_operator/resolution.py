"""The resolve step of the recipe (reconciler.py): which versions to serve, from the registry or the status.

A fresh pass (a spec change, a moved alias, the gate's poll) resolves the three references in the
registry; any other pass reuses what the status recorded for the current generation, so child events and
timers cost no registry call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelops_operator import status as st
from modelops_operator.kube import Kube
from modelops_operator.registry import RegistryError, Resolution, ResolvedModel, resolve_model, resolve_models
from modelops_operator.registry_access import CredentialsMissing, RegistryAccess
from modelops_operator.settings import OperatorSettings
from modelops_operator.spec import ROLES, SpecError, parse_spec
from modelops_operator.steps import Pass, Step

DETAIL = "ModelsResolved"


def cached_resolution(body: Mapping[str, Any]) -> Resolution | None:
    """The resolution recorded in status for the current generation, if any."""
    status = body.get("status") or {}
    models = status.get("models") or {}
    if status.get("resolvedGeneration") != body["metadata"].get("generation") or set(models) != set(ROLES):
        return None
    return Resolution(
        models={role: ResolvedModel.from_status(models[role]) for role in ROLES},
        training_run_id=status.get("trainingRunId"),
    )


def moved_roles(recorded: Mapping[str, ResolvedModel], current: Mapping[str, ResolvedModel]) -> list[str]:
    """The roles whose freshly resolved version differs from the recorded one (pure)."""
    return [
        role
        for role, model in current.items()
        if role not in recorded or recorded[role].version != model.version
    ]


def resolution_message(resolution: Resolution) -> str:
    """ModelsResolved's message: the versions, and the training-run warning if any."""
    listed = ", ".join(f"{m.name}/{m.version}" for m in resolution.models.values())
    return f"{listed}; {resolution.warning}" if resolution.warning else listed


def resolve(p: Pass) -> Step[Resolution]:
    """ModelsResolved: the versions to serve (a missing Secret is retried on a fixed delay, an unknown
    model or version is stuck, an unreachable registry is retried with backoff)."""
    resolution = None if p.fresh else cached_resolution(p.body)
    if resolution is None:
        try:
            resolution = resolve_models(p.registry.client(), p.spec.models)
        except CredentialsMissing as e:
            check = st.Check.retrying(e.reason, str(e), p.settings.secret_retry_seconds)
            return Step(DETAIL, check)
        except RegistryError as e:
            check = st.Check.stuck(e.reason, str(e)) if e.permanent else st.Check.retrying(e.reason, str(e))
            return Step(DETAIL, check)
    return Step(DETAIL, st.Check.passed("Resolved", resolution_message(resolution)), resolution)


def resolution_fields(p: Pass, resolution: Resolution) -> dict[str, Any]:
    """The status fields that record what is served for this generation (once the gate lets it through)."""
    return {
        "models": {role: m.to_status() for role, m in resolution.models.items()},
        "resolvedGeneration": p.generation,
        "trainingRunId": resolution.training_run_id,
    }


def moved_aliases(kube: Kube, body: Mapping[str, Any], settings: OperatorSettings) -> list[str]:
    """Re-resolve the aliases of a resolved ModelDeployment; the roles whose alias now names another version.

    Reads only (the Secret, and the registry through its alias cache); never writes. Nothing to follow
    while the spec handler has not resolved the current generation, or when no model is named by alias.
    Raises RegistryError when the registry cannot answer (CredentialsMissing when the Secret is gone).
    """
    recorded = cached_resolution(body)
    if recorded is None:
        return []
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError:
        return []
    aliased = {role: ref for role, ref in spec.models.items() if ref.alias is not None}
    challenger = dict(spec.canary.models) if spec.canary else {}
    aliased_challenger = {role: ref for role, ref in challenger.items() if ref.alias is not None}
    if not aliased and not aliased_challenger:
        return []
    client = RegistryAccess(kube, body["metadata"]["namespace"], spec.registry, settings).client()
    current = {role: resolve_model(client, ref) for role, ref in aliased.items()}
    moved = moved_roles(recorded.models, current)
    if aliased_challenger:
        raw = ((body.get("status") or {}).get("canary") or {}).get("models") or {}
        # Without a canary in the status the challenger was the stable versions (nothing to run).
        before = {r: ResolvedModel.from_status(raw[r]) for r in raw if r in ROLES} or dict(recorded.models)
        now = {role: resolve_model(client, ref) for role, ref in aliased_challenger.items()}
        moved += [f"canary.{role}" for role in moved_roles(before, now)]
    return moved
