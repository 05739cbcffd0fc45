"""ModelDeployment manifests checked offline against the CRD's own schema (modelops_operator.crd), with
unknown fields refused as the API server's strict field validation does, and its CEL rules (exactly one of
version or alias, ...) through the operator's own spec parser."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft7Validator

from modelops_operator.crd import spec_schema
from modelops_operator.spec import SpecError, parse_spec

KIND, API_VERSION = "ModelDeployment", "modelops.dev/v1alpha1"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown properties refused wherever it lists them (OpenAPI's nullable as a type)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            if node.pop("nullable", False) and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


_VALIDATOR = Draft7Validator(_strict(spec_schema()))


def problems(document: Any) -> Iterator[str]:
    """What is wrong with one ModelDeployment document, each as 'spec.path: message'."""
    if not isinstance(document, dict) or document.get("kind") != KIND:
        return
    if document.get("apiVersion") != API_VERSION:
        yield f"apiVersion: {document.get('apiVersion')!r} is not {API_VERSION}"
    if not (document.get("metadata") or {}).get("name"):
        yield "metadata.name: required"
    errors = sorted(
        _VALIDATOR.iter_errors(document.get("spec")), key=lambda e: [str(p) for p in e.absolute_path]
    )
    for error in errors:
        where = ".".join(str(p) for p in ("spec", *error.absolute_path))
        yield f"{where}: {error.message}"
    if not errors:  # the CRD's CEL rules: the operator's own parser enforces the same
        try:
            parse_spec(document.get("spec") or {})
        except SpecError as e:
            yield f"spec: {e}"
