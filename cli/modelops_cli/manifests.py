"""ModelDeployment manifests edited in place: ruamel.yaml's round trip keeps comments, key order, flow
style and quotes; only the models' version/alias keys change."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from modelops_contract import ROLES

KIND = "ModelDeployment"


class ManifestError(ValueError):
    """The file holds no ModelDeployment, or more than one where one is needed."""


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load_documents(text: str) -> list[Any]:
    return list(_yaml().load_all(text))


def dump_documents(documents: list[Any]) -> str:
    out = io.StringIO()
    _yaml().dump_all(documents, out)
    return out.getvalue()


def model_deployment(documents: list[Any], path: Path | str) -> Any:
    """The one ModelDeployment among the documents."""
    found = [d for d in documents if isinstance(d, Mapping) and d.get("kind") == KIND]
    if len(found) != 1:
        raise ManifestError(f"{path}: expected one {KIND}, found {len(found)}")
    return found[0]


def pinned_models(resource: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """role -> {name, version or alias} as the manifest names them now."""
    models = (resource.get("spec") or {}).get("models") or {}
    return {role: {k: str(v) for k, v in (models.get(role) or {}).items()} for role in ROLES}


def pin_versions(text: str, versions: Mapping[str, tuple[str, str]], path: Path | str = "manifest") -> str:
    """The manifest with each role pinned to (name, version) and not one other byte changed.

    ruamel.yaml finds where each model's `version` or `alias` value sits; the text is edited there only
    (`alias: champion` becomes `version: "3"`), so comments, layout, quoting and flow style stay as
    written (a full round-trip dump would re-flow some flow collections).
    """
    documents = load_documents(text)
    resource = model_deployment(documents, path)
    models = resource["spec"]["models"]
    lines = text.splitlines(keepends=True)
    edits = []
    for role, (name, version) in versions.items():
        entry = models[role]
        if str(entry.get("name")) != name:
            raise ManifestError(f"{path}: models.{role} is {entry.get('name')!r}, the record names {name!r}")
        key = "version" if "version" in entry else "alias"
        if key not in entry:
            raise ManifestError(f"{path}: models.{role} has neither version nor alias")
        edits.append((entry.lc.key(key), entry.lc.value(key), key, f'"{version}"'))
    # Later positions first, so that earlier ones stay valid.
    for (key_line, key_col), (value_line, value_col), key, value in sorted(edits, reverse=True):
        line = lines[value_line]
        end = _value_end(line, value_col)
        line = line[:value_col] + value + line[end:]
        if key_line == value_line and key != "version":
            line = line[:key_col] + "version" + line[key_col + len(key) :]
        elif key != "version":
            lines[key_line] = lines[key_line][:key_col] + "version" + lines[key_line][key_col + len(key) :]
        lines[value_line] = line
    edited = "".join(lines)
    check = pinned_models(model_deployment(load_documents(edited), path))
    for role, (name, version) in versions.items():
        if check[role] != {"name": name, "version": version}:
            raise ManifestError(f"{path}: models.{role} could not be pinned in place ({check[role]})")
    return edited


def _value_end(line: str, start: int) -> int:
    """Where a plain or quoted scalar starting at `start` ends (before `,`, `}`, a comment or the end)."""
    if line[start : start + 1] in ("'", '"'):
        return line.index(line[start], start + 1) + 1
    end = start
    while end < len(line) and line[end] not in ",}\n\r" and not line.startswith(" #", end):
        end += 1
    return len(line[:end].rstrip()) if end > start else end
