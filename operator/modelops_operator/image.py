"""The image step of the recipe (reconciler.py): the image to run, as given or built by a Job.

A build ends with the digest the builder pushed (its termination message): the step records it in
status.build, deletes the finished Job (its pod goes with it) and runs `repository@digest` (or the tag with
`pinDigest: false`). Later passes take the image from status.build while the derived tag is unchanged, so
nothing is left behind and nothing is built twice. Before a Job starts, the registry is asked for the
derived tag with the push Secret (image_registry.py): when it is there (another ModelDeployment built the
same versions on the same base), its digest is used and no Job runs. A failed build is named by its pod
(the model download, the builder's exit code, an OOM kill) and kept until the spec changes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from modelops_operator import status as st
from modelops_operator.builders.build_job import (
    build_failure,
    build_job,
    build_job_name,
    built_digest,
    derive_image_tag,
    job_state,
    pull_failure,
)
from modelops_operator.image_registry import ImageRegistry, ImageRegistryError, TagRef, credentials_for
from modelops_operator.registry import ResolvedModel
from modelops_operator.soak import served_digest
from modelops_operator.spec import Build
from modelops_operator.steps import Pass, Step
from modelops_operator.verification import DIGEST

DETAIL = "ImageReady"
BUILD, CANARY_BUILD = "build", "canaryBuild"  # the status fields of the stable's and the canary's builds
MAX_REGISTRY_ANSWER = 64 << 10  # a HEAD and a token: nothing large is expected
log = logging.getLogger(__name__)


def ensure_image(p: Pass, models: Mapping[str, ResolvedModel]) -> Step[str]:
    """ImageReady, with the image as the value once there is one (starting the build Job when needed)."""
    if p.spec.image.reference:
        reference = p.spec.image.reference
        fields: dict[str, Any] = {"image": reference}
        if p.status.get("image") != reference:
            fields["imageDigest"] = None  # the pods' digest of the previous image (merge patch: removed)
        return Step(DETAIL, st.Check.passed("ImageReference", reference), reference, fields)
    build = p.spec.image.build
    assert build is not None  # parse_spec guarantees reference xor build
    return image_of_build(p, models, build, BUILD)


def image_of_build(p: Pass, models: Mapping[str, ResolvedModel], build: Build, slot: str) -> Step[str]:
    """The image `build` makes of these versions, remembered in status.<slot> (BUILD: the stable pods';
    CANARY_BUILD: the canary's challenger): the value once it exists, the Job started or followed till
    then."""
    allowed = p.settings.builder_images
    if "*" not in allowed and build.builder_image not in allowed:
        message = f"builder image {build.builder_image[:200]!r} is not one this operator runs"
        return Step(DETAIL, st.Check.stuck("BuilderNotAllowed", message))
    tagged = f"{build.repository}:{derive_image_tag(models, build)}"
    recorded = p.status.get(slot) or {}
    if recorded.get("image") == tagged:
        if DIGEST.fullmatch(str(recorded.get("digest"))):
            reason = "ImageReused" if recorded.get("reason") == "ImageReused" else "ImageBuilt"
            return built(build, slot, tagged, str(recorded["digest"]), reason)
        if recorded.get("failed") and recorded.get("generation") == p.generation:
            # A failed build is final for the generation that started it; a spec edit tries again.
            return Step(DETAIL, st.Check.stuck(str(recorded["failed"]), str(recorded.get("message", ""))))
    return run_build(p, models, build, slot, tagged)


def named_image_digest(p: Pass, image: str, available: bool) -> Step[None]:
    """status.imageDigest of a named image: what the pods run (their imageID) once the rollout is
    available, read once per reference. A built image's digest is known from its build."""
    if p.spec.image.build is not None or not available:
        return Step(None, st.Check.passed("NotNeeded", ""))
    if p.status.get("image") == image and p.status.get("imageDigest"):
        return Step(None, st.Check.passed("Known", ""))
    digest = served_digest(p)
    return Step(None, st.Check.passed("Read", ""), fields={"imageDigest": digest} if digest else {})


def built(build: Build, slot: str, tagged: str, digest: str, reason: str = "ImageBuilt") -> Step[str]:
    """The built image, by digest unless the spec says otherwise, and the status that remembers it (the
    stable's build also names the pods' image)."""
    image = f"{build.repository}@{digest}" if build.pin_digest else tagged
    # Status is merge-patched: the keys of a failure are removed explicitly.
    record = {
        "image": tagged,
        "digest": digest,
        "reason": reason,
        "failed": None,
        "message": None,
        "generation": None,
    }
    fields: dict[str, Any] = {slot: record}
    if slot == BUILD:
        fields |= {"image": image, "imageDigest": digest}
    return Step(DETAIL, st.Check.passed(reason, f"{tagged} is {digest}"), image, fields)


def failed(p: Pass, slot: str, tagged: str, job_name: str, reason: str, message: str) -> Step[str]:
    """A build that failed: the Job (and its pod) deleted, the reason kept in status.<slot>."""
    p.kube.delete("batch/v1", "Job", p.namespace, job_name)
    message = f"build Job {job_name}: {message}"
    record = {
        "image": tagged,
        "digest": None,
        "failed": reason,
        "message": message,
        "generation": p.generation,
    }
    return Step(DETAIL, st.Check.stuck(reason, message), None, {slot: record})


def registry_digest(p: Pass, reference: str, secrets: Sequence[str]) -> str | None:
    """The digest the tag `reference` names in its registry now, asked with the credentials the first of
    these dockerconfigjson Secrets has for that host; None when the tag is not there or the registry
    cannot say (refused, down, nonsense: logged)."""
    try:
        host = TagRef.parse(reference).registry
        credentials = None
        for name in secrets:
            data = p.kube.secret_data(p.namespace, name) or {}
            try:
                config = json.loads(base64.b64decode(data.get(".dockerconfigjson", ""), validate=True))
            except (ValueError, binascii.Error):
                continue
            credentials = credentials_for(config, host) if isinstance(config, dict) else None
            if credentials is not None:
                break
        settings = p.settings
        registry = ImageRegistry(
            settings.registry_timeout_seconds, MAX_REGISTRY_ANSWER, settings.plain_http_registries
        )
        return registry.tag_digest(reference, credentials)
    except ImageRegistryError as e:
        where, what = f"{p.namespace}/{p.name}", reference[:300]
        log.info("%s: the registry could not say which digest %s names (%s)", where, what, e.reason)
        return None


def run_build(
    p: Pass, models: Mapping[str, ResolvedModel], build: Build, slot: str, tagged: str
) -> Step[str]:
    """Start, follow and conclude the build Job of `tagged`: a concluded Job is deleted either way."""
    job_name = build_job_name(p.name, tagged.rsplit(":", 1)[1])
    job = p.kube.get("batch/v1", "Job", p.namespace, job_name)
    state, message = job_state(job)
    if state == "missing":
        # Before building: the registry may have the tag already (the same inputs, built elsewhere).
        digest = registry_digest(p, tagged, [build.push_secret] if build.push_secret else [])
        if digest is not None:
            return built(build, slot, tagged, digest, "ImageReused")
        plain_http = p.settings.plain_http_registries
        p.kube.apply(build_job(p.body, p.spec, models, p.generation, plain_http))
        return Step(DETAIL, st.Check.waiting("BuildRunning", f"build Job {job_name} started"))
    pod = build_pod(p, job_name)
    if state == "running":
        stuck = pull_failure(pod) if pod else None
        if stuck is not None:
            return failed(p, slot, tagged, job_name, *stuck)
        return Step(DETAIL, st.Check.waiting("BuildRunning", f"build Job {job_name} running"))
    if state == "timedout":
        return failed(p, slot, tagged, job_name, "BuildTimeout", message)
    if state == "failed":
        return failed(
            p, slot, tagged, job_name, *((build_failure(pod) if pod else None) or ("BuildFailed", message))
        )
    digest = built_digest(pod) if pod else None
    if digest is None:
        return failed(
            p, slot, tagged, job_name, "DigestMissing", "completed, but its builder reported no digest"
        )
    p.kube.delete("batch/v1", "Job", p.namespace, job_name)
    return built(build, slot, tagged, digest)


def build_pod(p: Pass, job_name: str) -> dict[str, Any] | None:
    """The build Job's pod (backoffLimit 0: at most one), or None once it is gone."""
    pods = p.kube.list_objects("v1", "Pod", p.namespace, f"job-name={job_name}")
    return pods[0] if pods else None
