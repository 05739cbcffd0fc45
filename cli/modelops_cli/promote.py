"""What an environment verified, read from the registry: the versions `modelops promote` pins.

Each version a verifying ModelDeployment soaked carries `modelops.verified.<environment>` (a JSON record
naming the three versions served together, modelops_operator.verification). The newest verified
predictor version of the target manifest's predictor model, and the drift and outlier versions its record
names, are what the target pins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops_contract import ROLES
from modelops_operator.verification import parse_record, verified_tag


class NothingVerified(LookupError):
    """No version of the model carries a record of that environment."""


@dataclass(frozen=True)
class Verified:
    """A record and the versions it names: role -> (name, version)."""

    versions: dict[str, tuple[str, str]]
    record: dict[str, Any]

    def describe(self) -> str:
        r = self.record
        where = r.get("resource", "?") + (f" on {r['cluster']}" if r.get("cluster") else "")
        return f"verified in {r.get('environment')} by {where}, from {r.get('from')} to {r.get('to')}"


def latest_verified(
    versions: Sequence[Mapping[str, Any]], model: str, environment: str, version: str | None = None
) -> Verified:
    """The newest (or the given) version of `model` verified in `environment`, from the registry's
    version list (with tags), and what its record names for the other roles."""
    tag = verified_tag(environment)
    candidates = sorted(versions, key=lambda v: int(v["version"]), reverse=True)
    for found in candidates:
        if version is not None and str(found["version"]) != version:
            continue
        tags = {t["key"]: t.get("value", "") for t in found.get("tags") or ()}
        record = parse_record(tags.get(tag))
        label = f"{model}/{found['version']}"
        if record is None or record["models"].get("predictor") != label:
            continue
        named = {role: str(record["models"].get(role, "")) for role in ROLES}
        if not all("/" in value for value in named.values()):
            continue
        pinned = {role: tuple(value.rsplit("/", 1)) for role, value in named.items()}
        return Verified({role: (n, v) for role, (n, v) in pinned.items()}, record)
    which = f"version {version} of {model}" if version else f"no version of {model}"
    raise NothingVerified(f"{which} carries a {tag} record" + (" naming it" if version else ""))
