"""Service settings read once from the environment (the operator -> service contract)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SERVICE_NAME = "WineQualityService"


@dataclass(frozen=True)
class DriftSettings:
    """How the per-request and windowed drift tests run."""

    window_size: int = 500
    window_min_rows: int = 100
    # The window test is re-run once this many new rows arrived (a K-S p-value on 500 rows costs ~2 ms).
    window_every: int = 50


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    service_name: str = DEFAULT_SERVICE_NAME
    predictor_uri: str | None = None
    drift_uri: str | None = None
    outlier_uri: str | None = None
    monitoring_enabled: bool = True
    log_inputs: bool = True
    max_rows: int = 1000
    max_body_bytes: int = 1_048_576
    drift: DriftSettings = DriftSettings()

    @property
    def uses_registry(self) -> bool:
        """True when the models come from MLflow URIs rather than from the bento."""
        return bool(self.predictor_uri or self.drift_uri or self.outlier_uri)


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """Read true/false (also 1/0, yes/no) from an environment value."""
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def parse_positive_int(name: str, value: str | None, default: int) -> int:
    """Read a positive integer from an environment value."""
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError as e:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from e
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from an environment mapping (os.environ by default)."""
    env = os.environ if environ is None else environ
    drift = DriftSettings(
        window_size=parse_positive_int(
            "MODELOPS_DRIFT_WINDOW_SIZE", env.get("MODELOPS_DRIFT_WINDOW_SIZE"), 500
        ),
        window_min_rows=parse_positive_int(
            "MODELOPS_DRIFT_WINDOW_MIN_ROWS", env.get("MODELOPS_DRIFT_WINDOW_MIN_ROWS"), 100
        ),
        window_every=parse_positive_int(
            "MODELOPS_DRIFT_WINDOW_EVERY", env.get("MODELOPS_DRIFT_WINDOW_EVERY"), 50
        ),
    )
    if drift.window_min_rows > drift.window_size:
        raise ValueError(
            f"MODELOPS_DRIFT_WINDOW_MIN_ROWS ({drift.window_min_rows}) exceeds "
            f"MODELOPS_DRIFT_WINDOW_SIZE ({drift.window_size})"
        )
    return Settings(
        service_name=env.get("MODELOPS_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
        predictor_uri=env.get("MODELOPS_PREDICTOR_URI") or None,
        drift_uri=env.get("MODELOPS_DRIFT_URI") or None,
        outlier_uri=env.get("MODELOPS_OUTLIER_URI") or None,
        monitoring_enabled=parse_bool(
            "MODELOPS_MONITORING_ENABLED", env.get("MODELOPS_MONITORING_ENABLED"), True
        ),
        log_inputs=parse_bool("MODELOPS_LOG_INPUTS", env.get("MODELOPS_LOG_INPUTS"), True),
        max_rows=parse_positive_int("MODELOPS_MAX_ROWS", env.get("MODELOPS_MAX_ROWS"), 1000),
        max_body_bytes=parse_positive_int(
            "MODELOPS_MAX_BODY_BYTES", env.get("MODELOPS_MAX_BODY_BYTES"), 1_048_576
        ),
        drift=drift,
    )
