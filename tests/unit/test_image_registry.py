"""The image registry lookup's pure parts: references, Docker config credentials, challenges."""

import base64

import pytest

from modelops_operator.image_registry import ImageRegistryError, TagRef, challenge, credentials_for


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("10.244.0.1:5000/ns/wine:p1-d1-o1-abc", ("10.244.0.1:5000", "ns/wine", "p1-d1-o1-abc")),
        ("registry.example.com/acme/wine:1", ("registry.example.com", "acme/wine", "1")),
        ("localhost/wine:1", ("localhost", "wine", "1")),
        ("acme/wine:1", ("registry-1.docker.io", "acme/wine", "1")),
        ("wine:1", ("registry-1.docker.io", "library/wine", "1")),
    ],
)
def test_a_tag_reference_names_its_registry(reference: str, parsed: tuple[str, str, str]) -> None:
    ref = TagRef.parse(reference)
    assert (ref.registry, ref.repository, ref.tag) == parsed


@pytest.mark.parametrize("reference", ["wine", "10.0.0.1:5000/wine", "r.io/wine@sha256:" + "a" * 64])
def test_only_tags_are_looked_up(reference: str) -> None:
    with pytest.raises(ImageRegistryError, match="NotATag"):
        TagRef.parse(reference)


def test_credentials_match_the_registry_host_only() -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    config = {
        "auths": {
            "https://registry.example.com": {"auth": auth},
            "other.example.com": {"username": "u2", "password": "p2"},
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
        }
    }
    assert credentials_for(config, "registry.example.com") == ("user", "pa:ss")
    assert credentials_for(config, "other.example.com") == ("u2", "p2")
    assert credentials_for(config, "registry-1.docker.io") == ("hub", "pw")
    assert credentials_for(config, "registry.example.com.evil.test") is None
    assert credentials_for({"auths": "nonsense"}, "registry.example.com") is None
    assert credentials_for({}, "registry.example.com") is None


def test_a_challenge_is_parsed() -> None:
    assert challenge('Bearer realm="https://auth.example/token",service="reg",scope="x"') == (
        "bearer",
        {"realm": "https://auth.example/token", "service": "reg", "scope": "x"},
    )
    assert challenge('Basic realm="modelops"') == ("basic", {"realm": "modelops"})
