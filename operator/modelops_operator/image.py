"""The image step of the recipe (reconciler.py): the image to run, as given or built by a Job."""

from __future__ import annotations

from collections.abc import Mapping

from modelops_operator import status as st
from modelops_operator.builders.build_job import (
    GENERATION_ANNOTATION,
    build_job,
    build_job_name,
    built_image,
    derive_image_tag,
    job_state,
)
from modelops_operator.registry import ResolvedModel
from modelops_operator.steps import Pass, Step

DETAIL = "ImageReady"


def ensure_image(p: Pass, models: Mapping[str, ResolvedModel]) -> Step[str]:
    """ImageReady, with the image as the value once there is one (starting the build Job when needed)."""
    if p.spec.image.reference:
        reference = p.spec.image.reference
        return Step(DETAIL, st.Check.passed("ImageReference", reference), reference, {"image": reference})
    build = p.spec.image.build
    assert build is not None  # parse_spec guarantees reference xor build
    allowed = p.settings.builder_images
    if "*" not in allowed and build.builder_image not in allowed:
        message = f"builder image {build.builder_image[:200]!r} is not one this operator runs"
        return Step(DETAIL, st.Check.stuck("BuilderNotAllowed", message))
    job_name = build_job_name(p.name, derive_image_tag(models, build))
    job = p.kube.get("batch/v1", "Job", p.namespace, job_name)
    state, message = job_state(job)
    if job is not None and state in ("failed", "timedout"):
        # A failed build is final for the generation that started it; a spec edit tries again.
        started_for = int((job["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION, "0"))
        if started_for < p.generation:
            p.kube.delete("batch/v1", "Job", p.namespace, job_name)
            return Step(
                DETAIL,
                st.Check.waiting("BuildRestarting", "previous build failed; rebuilding for the new spec"),
            )
    if state == "missing":
        p.kube.apply(build_job(p.body, p.spec, models, p.generation))
        return Step(DETAIL, st.Check.waiting("BuildRunning", f"build Job {job_name} started"))
    if state == "running":
        return Step(DETAIL, st.Check.waiting("BuildRunning", f"build Job {job_name} running"))
    if state in ("timedout", "failed"):
        reason = "BuildTimeout" if state == "timedout" else "BuildFailed"
        return Step(DETAIL, st.Check.stuck(reason, message))
    image = built_image(models, build)
    return Step(DETAIL, st.Check.passed("ImageBuilt", image), image, {"image": image})
