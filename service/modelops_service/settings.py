"""Service settings read once from the environment: the reading side of modelops_contract."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import modelops_contract as contract
from modelops_contract import DEFAULTS

DEFAULT_SERVICE_NAME = DEFAULTS.service_name
T = TypeVar("T", int, float)


@dataclass(frozen=True)
class DriftSettings:
    """How the per-request and windowed drift tests run."""

    window_size: int = DEFAULTS.drift_window_size
    window_min_rows: int = DEFAULTS.drift_window_min_rows
    # The window test is re-run once this many new rows arrived (a K-S p-value on 500 rows costs ~2 ms).
    window_every: int = DEFAULTS.drift_window_every
    # ...and not sooner than this many seconds after the previous test (0: no such floor).
    window_min_seconds: float = DEFAULTS.drift_window_min_seconds


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    service_name: str = DEFAULTS.service_name
    predictor_uri: str | None = None
    drift_uri: str | None = None
    outlier_uri: str | None = None
    monitoring_enabled: bool = DEFAULTS.monitoring
    log_inputs: bool = DEFAULTS.log_inputs
    max_rows: int = DEFAULTS.max_rows
    max_body_bytes: int = DEFAULTS.max_body_bytes
    max_concurrency: int = DEFAULTS.max_concurrency
    max_queue_ms: int = DEFAULTS.max_queue_ms
    workers: int = DEFAULTS.workers
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


def parse_number(
    name: str, value: str | None, default: T, kind: Callable[[str], T], valid: Callable[[T], bool], what: str
) -> T:
    """Read a number from an environment value: `kind` parses it, `valid` accepts it (`what` says how)."""
    if value is None or value.strip() == "":
        return default
    try:
        number = kind(value)
    except ValueError as e:
        raise ValueError(f"{name} must be {what}, got {value!r}") from e
    if not valid(number):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def parse_positive_int(name: str, value: str | None, default: int) -> int:
    """Read a positive integer from an environment value."""
    return parse_number(name, value, default, int, lambda n: n > 0, "a positive integer")


def parse_seconds(name: str, value: str | None, default: float) -> float:
    """Read a duration in seconds (a finite number >= 0) from an environment value."""
    return parse_number(
        name, value, default, float, lambda n: math.isfinite(n) and n >= 0, "a number of seconds >= 0"
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from an environment mapping (os.environ by default); ValueError names a bad one."""
    env = os.environ if environ is None else environ

    def positive(name: str, default: int) -> int:
        return parse_positive_int(name, env.get(name), default)

    def boolean(name: str, default: bool) -> bool:
        return parse_bool(name, env.get(name), default)

    drift = DriftSettings(
        window_size=positive(contract.DRIFT_WINDOW_SIZE, DEFAULTS.drift_window_size),
        window_min_rows=positive(contract.DRIFT_WINDOW_MIN_ROWS, DEFAULTS.drift_window_min_rows),
        window_every=positive(contract.DRIFT_WINDOW_EVERY, DEFAULTS.drift_window_every),
        window_min_seconds=parse_seconds(
            contract.DRIFT_WINDOW_MIN_SECONDS,
            env.get(contract.DRIFT_WINDOW_MIN_SECONDS),
            DEFAULTS.drift_window_min_seconds,
        ),
    )
    if drift.window_min_rows > drift.window_size:
        raise ValueError(
            f"{contract.DRIFT_WINDOW_MIN_ROWS} ({drift.window_min_rows}) exceeds "
            f"{contract.DRIFT_WINDOW_SIZE} ({drift.window_size})"
        )
    uris = {role: env.get(contract.MODEL_URI[role]) or None for role in contract.ROLES}
    return Settings(
        service_name=env.get(contract.SERVICE_NAME) or DEFAULTS.service_name,
        predictor_uri=uris["predictor"],
        drift_uri=uris["drift"],
        outlier_uri=uris["outlier"],
        monitoring_enabled=boolean(contract.MONITORING_ENABLED, DEFAULTS.monitoring),
        log_inputs=boolean(contract.LOG_INPUTS, DEFAULTS.log_inputs),
        max_rows=positive(contract.MAX_ROWS, DEFAULTS.max_rows),
        max_body_bytes=positive(contract.MAX_BODY_BYTES, DEFAULTS.max_body_bytes),
        max_concurrency=positive(contract.MAX_CONCURRENCY, DEFAULTS.max_concurrency),
        max_queue_ms=positive(contract.MAX_QUEUE_MS, DEFAULTS.max_queue_ms),
        workers=positive(contract.WORKERS, DEFAULTS.workers),
        drift=drift,
    )
