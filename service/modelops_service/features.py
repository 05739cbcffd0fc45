"""Input features as the model's MLflow signature declares them (names, types, order)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FeatureKind = Literal["float", "integer", "boolean"]

# MLflow DataType names -> how a JSON value is checked and converted.
_KIND_BY_MLFLOW_TYPE: dict[str, FeatureKind] = {
    "double": "float",
    "float": "float",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class Feature:
    """One input column: its name, its kind and whether a record may omit it."""

    name: str
    kind: FeatureKind
    required: bool = True


def features_from_schema(schema: Any) -> tuple[Feature, ...]:
    """Read the columns of an MLflow input schema (a `mlflow.types.Schema` of ColSpecs)."""
    if schema is None:
        raise ValueError("the model has no input signature: feature names and types are unknown")
    features = []
    for column in schema.inputs:
        if not getattr(column, "name", None):
            raise ValueError(
                "the model signature has unnamed columns: a named (column-based) schema is needed"
            )
        type_name = getattr(column.type, "name", str(column.type))
        kind = _KIND_BY_MLFLOW_TYPE.get(type_name)
        if kind is None:
            raise ValueError(
                f"feature {column.name!r} has type {type_name!r}, which the service cannot decode"
            )
        features.append(Feature(column.name, kind, bool(getattr(column, "required", True))))
    return tuple(features)


def feature_names(features: tuple[Feature, ...]) -> list[str]:
    """The names in signature order."""
    return [feature.name for feature in features]
