"""The gate step of the recipe (reconciler.py, spec.gate): only verified versions are rolled out.

The records are read from the registry on every fresh pass (the status is not trusted with them); the
pure check is verification.gate_check. An image named by tag is looked up in its image registry (with the
pull Secrets): a tag that names another digest than the record's (moved since staging) does not pass. A
registry the operator cannot ask leaves the reference check alone; pin production by digest for the
strict form. While the gate is shut, status.models keeps what the pods serve
and a timer (handlers.py) looks again until the record appears.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelops_operator import status as st
from modelops_operator.image import registry_digest
from modelops_operator.registry import RegistryError, ResolvedModel
from modelops_operator.steps import Pass, Step
from modelops_operator.verification import digest_of, gate_check

DETAIL = "PromotionAllowed"


def check_gate(p: Pass, models: Mapping[str, ResolvedModel]) -> Step[None]:
    """PromotionAllowed: every version carries the record of every environment spec.gate names."""
    assert p.spec.gate is not None
    try:
        client = p.registry.client()
        tags = {role: client.version_tags(m.name, m.version) for role, m in models.items()}
    except RegistryError as e:
        check = st.Check.stuck if e.permanent else st.Check.waiting
        return Step(DETAIL, check(e.reason, f"gate not checked: {e}"))
    image = p.spec.image.reference  # a built image's records are checked by its versions alone
    floor = p.settings.verification_min_soak_seconds
    tag_digest = None
    if image is not None and digest_of(image) is None:
        tag_digest = registry_digest(p, image, p.spec.image.pull_secrets)
    return Step(DETAIL, gate_check(models, tags, p.spec.gate.environments, image, floor, tag_digest))
