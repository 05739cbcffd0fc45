"""What a training run registered: names, versions, provenance tags and the JSON record for deployments."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from modelops_contract import DATA_FINGERPRINT_TAG

PREDICTOR, DRIFT, OUTLIER = "predictor", "drift", "outlier"
MODEL_NAMES = {PREDICTOR: "wine_quality", DRIFT: "wine_quality_drift", OUTLIER: "wine_quality_outliers"}
FINGERPRINT_TAG = DATA_FINGERPRINT_TAG
# registered_models.json keys kept from the proof of concept
URI_KEYS = {
    PREDICTOR: "prediction_model_artifact_uri",
    DRIFT: "drift_model_artifact_uri",
    OUTLIER: "outlier_model_artifact_uri",
}


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Registered:
    """The three registered versions of one training run, with its metrics and provenance."""

    tracking_uri: str
    training_run_id: str
    data_fingerprint: str
    models: dict[str, ModelVersion]
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    seed: int = 0
    test_size: float = 0.25
    detectors: str = "alibi"
    duration_s: float = 0.0

    def to_record(self) -> dict[str, Any]:
        """The registered_models.json document (the proof-of-concept keys come first)."""
        return {
            **{URI_KEYS[role]: version.uri for role, version in self.models.items()},
            "tracking_uri": self.tracking_uri,
            "training_run_id": self.training_run_id,
            "data_fingerprint": self.data_fingerprint,
            "models": {role: asdict(version) for role, version in self.models.items()},
            "metrics": self.metrics,
            "params": self.params,
            "trials": self.trials,
            "seed": self.seed,
            "test_size": self.test_size,
            "detectors": self.detectors,
            "duration_s": round(self.duration_s, 2),
        }


def tag_versions(client: MlflowClient, models: dict[str, ModelVersion], tags: dict[str, str]) -> None:
    """Set the same provenance tags on every registered version."""
    for version in models.values():
        for key, value in tags.items():
            client.set_model_version_tag(version.name, version.version, key, value)


def write_record(registered: Registered, path: Path) -> Path:
    """Write registered_models.json (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(registered.to_record(), indent=2) + "\n")
    return path


def format_summary(registered: Registered) -> str:
    """A readable summary for the terminal."""
    lines = [f"Registered in {registered.tracking_uri} (training run {registered.training_run_id}):"]
    for role, version in registered.models.items():
        lines.append(f"  {role:<10} {version.name:<24} version {version.version:<4} {version.uri}")
    metrics = ", ".join(f"{key} {value:.4f}" for key, value in registered.metrics.items())
    lines.append(
        f"  best of {registered.trials} trials on the held-out {registered.test_size:.0%}: {metrics}"
    )
    lines.append(f"  detectors: {registered.detectors}; data fingerprint {registered.data_fingerprint}")
    lines.append(f"  took {registered.duration_s:.1f} s")
    return "\n".join(lines)
