"""What a build's outcome writes into the status: the stable's build names the pods' image, the canary's
challenger build only its own slot (its image is the canary Deployment's, never status.image)."""

from __future__ import annotations

from modelops_operator.image import BUILD, CANARY_BUILD, built
from modelops_operator.spec import Build

DIGEST = "sha256:" + "ab" * 32
BUILD_SPEC = Build(repository="registry.example/team/wine", base_image="registry.example/base:1")
TAGGED = "registry.example/team/wine:p7-d3-o3-0123456789ab"


def test_the_stable_build_names_the_pods_image_by_digest() -> None:
    step = built(BUILD_SPEC, BUILD, TAGGED, DIGEST)
    assert step.value == f"registry.example/team/wine@{DIGEST}"
    assert step.fields["image"] == step.value
    assert step.fields["imageDigest"] == DIGEST
    assert step.fields[BUILD]["image"] == TAGGED
    assert step.fields[BUILD]["digest"] == DIGEST
    assert step.fields[BUILD]["failed"] is None  # a failure's keys removed (merge patch)


def test_the_challengers_build_touches_only_its_own_slot() -> None:
    step = built(BUILD_SPEC, CANARY_BUILD, TAGGED, DIGEST, "ImageReused")
    assert step.value == f"registry.example/team/wine@{DIGEST}"  # what the canary's pods run
    assert set(step.fields) == {CANARY_BUILD}  # status.image and imageDigest stay the stable pods'
    assert step.fields[CANARY_BUILD]["reason"] == "ImageReused"
    assert step.check.ok


def test_a_tag_instead_of_a_digest_when_the_spec_says_so() -> None:
    unpinned = Build(repository=BUILD_SPEC.repository, base_image=BUILD_SPEC.base_image, pin_digest=False)
    assert built(unpinned, CANARY_BUILD, TAGGED, DIGEST).value == TAGGED
