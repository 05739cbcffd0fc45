"""What the operator asks an OCI image registry: the digest a tag names (a HEAD of its manifest), so that a
build whose derived tag exists already is not run again (image.py).

Bounded like every network read here (bounded_http: a total deadline, a byte cap, no redirects). The
credentials (a `.dockerconfigjson`) go to the registry's own host only: as Basic, or to a Bearer token
realm on that same host; a realm on another host is asked without them (an anonymous token), so a
hostile registry cannot collect another origin's password. Plain HTTP only for the hosts the operator's
settings name (MODELOPS_PLAIN_HTTP_IMAGE_REGISTRIES).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from modelops_operator import bounded_http
from modelops_operator.verification import DIGEST

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
DOCKER_HUB = "registry-1.docker.io"


class ImageRegistryError(Exception):
    """The registry could not say (refused, failed, or answered nonsense); `reason` is a stable word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class TagRef:
    """registry host, repository path and tag of `host/path:tag`."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, reference: str) -> TagRef:
        name, _, tag = reference.rpartition(":")
        if not name or "/" in tag or "@" in reference:
            raise ImageRegistryError("NotATag", reference[:200])
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag)
        return cls(DOCKER_HUB, name if "/" in name else f"library/{name}", tag)


def credentials_for(docker_config: Mapping[str, object], registry: str) -> tuple[str, str] | None:
    """(user, password) for `registry` from a Docker config's `auths`, matched by host only."""
    auths = docker_config.get("auths")
    if not isinstance(auths, Mapping):
        return None
    for key, entry in auths.items():
        host = urlsplit(key if "//" in key else f"//{key}").netloc
        if host.lower() not in (registry.lower(), "index.docker.io" if registry == DOCKER_HUB else ""):
            continue
        if not isinstance(entry, Mapping):
            return None
        if isinstance(entry.get("auth"), str):
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8", "replace").partition(":")
            return user, password
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return entry["username"], entry["password"]
    return None


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a WWW-Authenticate header (`Bearer realm="...",service="..."`)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


@dataclass(frozen=True)
class ImageRegistry:
    """The bounds and settings of the operator's calls to image registries."""

    deadline_seconds: float
    max_bytes: int
    plain_http: frozenset[str] = frozenset()

    def tag_digest(self, reference: str, credentials: tuple[str, str] | None) -> str | None:
        """The digest `reference` (host/path:tag) names now, or None when the tag does not exist."""
        ref = TagRef.parse(reference)
        scheme = "http" if ref.registry.lower() in self.plain_http else "https"
        url = f"{scheme}://{ref.registry}/v2/{ref.repository}/manifests/{ref.tag}"
        headers = {"Accept": MANIFEST_TYPES}
        answer = self._call("HEAD", url, headers)
        if answer.status == 401:
            headers["Authorization"] = self._authorization(
                ref, answer.header("WWW-Authenticate"), credentials
            )
            answer = self._call("HEAD", url, headers)
        if answer.status == 404:
            return None
        if answer.status in (401, 403):
            raise ImageRegistryError("Refused", f"HTTP {answer.status}")
        if answer.status != 200:
            raise ImageRegistryError("RegistryFailed", f"HTTP {answer.status}")
        digest = answer.header("Docker-Content-Digest")
        if not DIGEST.fullmatch(digest):
            raise ImageRegistryError("NoDigest", "the answer named no sha256 digest")
        return digest

    def _authorization(self, ref: TagRef, header: str, credentials: tuple[str, str] | None) -> str:
        scheme, params = challenge(header)
        basic = "Basic " + base64.b64encode(":".join(credentials).encode()).decode() if credentials else ""
        if scheme == "basic":
            if not basic:
                raise ImageRegistryError("Refused", "credentials needed")
            return basic
        realm = params.get("realm", "")
        if scheme != "bearer" or urlsplit(realm).scheme not in ("http", "https"):
            raise ImageRegistryError("RegistryFailed", "unknown authentication challenge")
        same_host = urlsplit(realm).netloc.lower() == ref.registry.lower()
        query = {"scope": f"repository:{ref.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        token_headers = {"Authorization": basic} if basic and same_host else {}
        sep = "&" if urlsplit(realm).query else "?"
        answer = self._call("GET", realm + sep + urlencode(query), token_headers)
        if answer.status != 200:
            raise ImageRegistryError("Refused", f"token HTTP {answer.status}")
        try:
            body = json.loads(answer.body)
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError) as e:
            raise ImageRegistryError("RegistryFailed", "token answer is not JSON") from e
        if not isinstance(token, str) or not token:
            raise ImageRegistryError("RegistryFailed", "token answer holds no token")
        return f"Bearer {token}"

    def _call(self, method: str, url: str, headers: Mapping[str, str]) -> bounded_http.Answer:
        try:
            return bounded_http.call(method, url, headers, None, self.deadline_seconds, self.max_bytes)
        except bounded_http.HttpFailure as e:
            raise ImageRegistryError("RegistryFailed", e.kind) from e
