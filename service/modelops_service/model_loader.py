"""Load the predictor and the two detectors from MLflow model URIs or from models baked into the bento."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelops_contract as contract
from modelops_service.errors import ModelLoadError
from modelops_service.features import Feature, feature_names, features_from_schema
from modelops_service.predictor import Predictor
from modelops_service.settings import Settings

ROLES = contract.ROLES
# Names of the models inside a bento's model store (the bake CLI imports them under these names).
BENTO_MODEL_NAMES = {
    "predictor": "modelops-predictor",
    "drift": "modelops-drift",
    "outlier": "modelops-outlier",
}
REGISTRY_LABEL = "registry_model"  # bento model label holding "<registered name>/<version>"
# Beside a model directory baked into an image by the operator's build Job: "<registered name>/<version>".
LABEL_FILE = contract.BAKED_LABEL_FILE

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by a `models:/` URI."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def parse_models_uri(uri: str) -> ModelRef:
    """`models:/name/3` or `models:/name@alias` -> ModelRef."""
    match = _MODELS_URI.match(uri.strip())
    if not match:
        raise ModelLoadError(
            f"not a registry model URI (models:/<name>/<version> or models:/<name>@<alias>): {uri!r}"
        )
    return ModelRef(match["name"], match["version"], match["alias"])


def resolve_version(ref: ModelRef, client: Any = None) -> ModelRef:
    """Pin an alias (or 'latest') to the version number it points at now."""
    if ref.alias is None and ref.version not in (None, "latest"):
        return ref
    from mlflow import MlflowClient

    client = client or MlflowClient()
    if ref.alias is not None:
        version = client.get_model_version_by_alias(ref.name, ref.alias).version
    else:
        versions = client.search_model_versions(
            f"name='{ref.name}'", order_by=["version_number DESC"], max_results=1
        )
        if not versions:
            raise ModelLoadError(f"registered model {ref.name!r} has no versions")
        version = versions[0].version
    return ModelRef(ref.name, str(version))


def download_model(uri: str, client: Any = None) -> tuple[Path, str]:
    """Fetch a registry model's files; returns the local directory and '<name>/<version>'."""
    import mlflow

    ref = resolve_version(parse_models_uri(uri), client)
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=ref.uri)
    except Exception as e:  # MlflowException and transport errors alike mean: this model cannot be served
        raise ModelLoadError(f"cannot download {ref.uri}: {e}") from e
    return Path(path), f"{ref.name}/{ref.version}"


def is_local_uri(uri: str) -> bool:
    """An absolute path or file:// URI (a model directory baked into the image), not a registry URI."""
    return uri.startswith(("/", "file://"))


def local_model_dir(uri: str) -> tuple[Path, str]:
    """A model directory on disk and its registry label (from LABEL_FILE when the build wrote one)."""
    path = Path(uri.removeprefix("file://"))
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(f"{uri!r} is not an MLflow model directory (no MLmodel file in it)")
    label_file = path / LABEL_FILE
    return path, label_file.read_text().strip() if label_file.is_file() else str(path)


def bento_model_dir(role: str) -> tuple[Path, str]:
    """A baked model's MLflow directory inside the bento store and its registry label."""
    import bentoml

    name = BENTO_MODEL_NAMES[role]
    try:
        model = bentoml.models.get(f"{name}:latest")
    except bentoml.exceptions.NotFound as e:
        raise ModelLoadError(
            f"no {contract.MODEL_URI[role]} set and no {name!r} model baked into the bento"
        ) from e
    return Path(model.path_of("mlflow_model")), model.info.labels.get(REGISTRY_LABEL, str(model.tag))


def load_predictor(path: Path) -> tuple[Predictor, tuple[Feature, ...]]:
    """The predictor and its input features (from the MLmodel signature)."""
    import mlflow
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    features = features_from_schema(meta.get_input_schema())
    dtypes = {feature.name: "int64" for feature in features if feature.kind == "integer"}
    model: Any = (
        mlflow.sklearn.load_model(str(path))
        if "sklearn" in meta.flavors
        else mlflow.pyfunc.load_model(str(path))
    )
    return Predictor(model, feature_names(features), dtypes), features


def load_detector(path: Path, role: str) -> Any:
    """The drift or outlier detector of a modelops_detectors model, from its saved state: no pyfunc
    unpickling, so alibi-detect need not be installed (modelops_detectors.saved)."""
    from modelops_detectors.saved import load_saved_detector

    detector = load_saved_detector(path)
    found = "drift" if hasattr(detector, "reference") else "outlier"
    if found != role:
        raise ModelLoadError(f"{path} is a {found} detector model, given as the {role} model")
    return detector


@dataclass(frozen=True)
class LoadedModels:
    """The three models a service instance answers with."""

    predictor: Predictor
    features: tuple[Feature, ...]
    drift_detector: Any
    outlier_detector: Any
    versions: dict[str, str]


def _locate(role: str, uri: str | None) -> tuple[Path, str]:
    if not uri:
        return bento_model_dir(role)
    return local_model_dir(uri) if is_local_uri(uri) else download_model(uri)


def load_models(settings: Settings) -> LoadedModels:
    """Load the predictor and both detectors (all three, whether or not monitoring is switched on).

    Any failure is a ModelLoadError naming the model: the service then answers 503 with that message.
    """
    from mlflow.exceptions import MlflowException

    uris = {"predictor": settings.predictor_uri, "drift": settings.drift_uri, "outlier": settings.outlier_uri}
    loaded: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for role, uri in uris.items():
        try:
            path, versions[role] = _locate(role, uri)
            loaded[role] = load_predictor(path) if role == "predictor" else load_detector(path, role)
        except ModelLoadError:
            raise
        except (MlflowException, OSError, ValueError, ImportError, AttributeError, KeyError, TypeError) as e:
            where = uri or f"the bento model {BENTO_MODEL_NAMES[role]!r}"
            raise ModelLoadError(f"cannot load the {role} model from {where}: {e}") from e
    predictor, features = loaded["predictor"]
    return LoadedModels(predictor, features, loaded["drift"], loaded["outlier"], versions)
