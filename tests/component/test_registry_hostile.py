"""The operator's registry clients (MLflow's, and the image registry's tag lookup) against a hostile server
on loopback (real sockets, no double): every call ends within its deadline, reads at most its byte cap,
never follows a redirect with the credentials, and fails as a classified error with a short message."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from modelops_operator.image_registry import ImageRegistry, ImageRegistryError
from modelops_operator.registry import (
    Credentials,
    RegistryBusy,
    RegistryClient,
    RegistryError,
    RegistryMisbehaving,
    RegistryUnreachable,
)
from modelops_support.waiting import wait_for
from tests.fixtures.hostile import hostile_server

TOKEN = "tenant-token-must-not-travel"
DEADLINE = 2.0


def client(root: str, **options: object) -> RegistryClient:
    return RegistryClient(root, Credentials(token=TOKEN), timeout=DEADLINE, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("drip", RegistryUnreachable),
        ("endless", RegistryMisbehaving),
        ("html", RegistryMisbehaving),
        ("nokeys", RegistryMisbehaving),
        ("shout", RegistryUnreachable),
        ("badline", RegistryUnreachable),
    ],
)
def test_a_hostile_answer_is_a_bounded_registry_error(path: str, error: type[RegistryError]) -> None:
    with hostile_server(drip_seconds=0.5) as server:
        started = time.monotonic()
        with pytest.raises(error) as failed:
            client(f"{server.url}/{path}", max_answer_bytes=1 << 20).get_model_version(f"m-{path}", "1")
        took = time.monotonic() - started
    assert took < DEADLINE + 1.0, f"{path} held the call {took:.1f} s"
    assert len(str(failed.value)) <= 300
    assert "AAAA" * 50 not in str(failed.value)
    assert "\x07" not in str(failed.value)
    if path == "endless":
        assert server.bytes_sent >= 1 << 20  # it kept sending; the client stopped reading at the cap


def test_a_redirect_is_refused_and_the_token_never_reaches_the_other_origin() -> None:
    with hostile_server() as registry, hostile_server("127.0.0.2") as elsewhere:
        registry.redirect_to = elsewhere.url
        with pytest.raises(RegistryMisbehaving, match="redirected"):
            client(f"{registry.url}/redirect").get_model_version("m", "1")
        assert elsewhere.authorizations == []
        # The same request made directly shows the recorder would have seen the token.
        with pytest.raises(RegistryError):
            client(f"{elsewhere.url}/record").get_model_version("m-direct", "1")
        assert elsewhere.authorizations == [f"Bearer {TOKEN}"]


def test_a_slow_host_holds_only_its_own_slots() -> None:
    with (
        hostile_server(drip_seconds=0.5) as slow,
        hostile_server("127.0.0.3") as other,
        concurrent.futures.ThreadPoolExecutor(4) as pool,
    ):
        calls = [
            pool.submit(client(f"{slow.url}/drip", calls_per_host=1).get_model_version, f"s{i}", "1")
            for i in range(2)
        ]
        # One slow call holds the host's only slot (the drip has begun); the other waits for it.
        wait_for(lambda: slow.bytes_sent > 0, 5, 0.02, "the first slow call under way")
        started = time.monotonic()
        with pytest.raises(RegistryError, match="recorded"):
            client(f"{other.url}/record", calls_per_host=1).get_model_version("o", "1")
        other_took = time.monotonic() - started
        errors = [type(c.exception()) for c in calls]
    assert other_took < 1.0
    assert sorted(e.__name__ for e in errors) == ["RegistryBusy", "RegistryUnreachable"]
    assert RegistryBusy in errors


@pytest.mark.parametrize("kind", ["drip", "endless", "html", "shout", "badline", "redirect"])
def test_an_image_registry_cannot_hold_or_fool_the_tag_lookup(kind: str) -> None:
    """No digest, no wait beyond the deadline, no redirect followed: the build runs instead (image.py)."""
    with hostile_server(drip_seconds=0.5) as server, hostile_server("127.0.0.2") as elsewhere:
        server.redirect_to = elsewhere.url
        host = server.url.removeprefix("http://")
        lookup = ImageRegistry(DEADLINE, 1 << 16, frozenset({host}))
        started = time.monotonic()
        with pytest.raises(ImageRegistryError) as failed:
            lookup.tag_digest(f"{host}/{kind}/model:p1-d1-o1-abc", ("tenant", TOKEN))
        assert time.monotonic() - started < DEADLINE + 1.0
        assert len(str(failed.value)) <= 300
        assert elsewhere.authorizations == []


def test_image_registry_credentials_never_go_to_a_token_realm_on_another_host() -> None:
    """A registry may send the client to any realm for a token: only one on its own host gets the
    password; another host is asked anonymously (and here refuses)."""
    with hostile_server() as server, hostile_server("127.0.0.2") as elsewhere:
        server.redirect_to = elsewhere.url
        host = server.url.removeprefix("http://")
        lookup = ImageRegistry(DEADLINE, 1 << 16, frozenset({host}))
        with pytest.raises(ImageRegistryError, match="Refused"):
            lookup.tag_digest(f"{host}/challenge/model:1", ("tenant", TOKEN))
        assert elsewhere.authorizations == [""]  # asked, without the credentials
