"""The contract between the operator's Deployment and the service: what one writes, the other reads.

Environment variable names and their defaults, the model roles, the serving port and probe paths, and
the registry tags that link a model version to its training run. The operator writes the environment
(modelops_operator.builders.deployment), the service reads it (modelops_service.settings), training writes
the tags (modelops_training.registration) and the operator reads them (modelops_operator.registry).
This module imports nothing of theirs; a test checks that what the builder writes the service reads back.
"""

from __future__ import annotations

from dataclasses import dataclass

# The three models a ModelDeployment names, in the order status and logs list them.
ROLES = ("predictor", "drift", "outlier")

# -- Environment of the serving container ----------------------------------------------------------
TRACKING_URI = "MLFLOW_TRACKING_URI"
MODEL_URI = {
    "predictor": "MODELOPS_PREDICTOR_URI",
    "drift": "MODELOPS_DRIFT_URI",
    "outlier": "MODELOPS_OUTLIER_URI",
}
SERVICE_NAME = "MODELOPS_SERVICE_NAME"
MONITORING_ENABLED = "MODELOPS_MONITORING_ENABLED"
LOG_INPUTS = "MODELOPS_LOG_INPUTS"
DRIFT_WINDOW_SIZE = "MODELOPS_DRIFT_WINDOW_SIZE"
DRIFT_WINDOW_MIN_ROWS = "MODELOPS_DRIFT_WINDOW_MIN_ROWS"
DRIFT_WINDOW_EVERY = "MODELOPS_DRIFT_WINDOW_EVERY"
DRIFT_WINDOW_MIN_SECONDS = "MODELOPS_DRIFT_WINDOW_MIN_SECONDS"
MAX_ROWS = "MODELOPS_MAX_ROWS"
MAX_BODY_BYTES = "MODELOPS_MAX_BODY_BYTES"
MAX_CONCURRENCY = "MODELOPS_MAX_CONCURRENCY"
MAX_QUEUE_MS = "MODELOPS_MAX_QUEUE_MS"
WORKERS = "MODELOPS_WORKERS"
# The pod's root filesystem is read-only: what the service's libraries write goes to the scratch volume
# (BentoML's home with its model store and runtime files; numba's cache of compiled functions).
SCRATCH_DIR = "/tmp"
# A built image (spec.image.build) carries its models here, one directory per role, each with a
# BAKED_LABEL_FILE that names the registered version ("<name>/<version>"), which the service reports.
BAKED_MODELS_DIR = "/opt/modelops/models"
BAKED_LABEL_FILE = "registered_model.txt"
SCRATCH_ENV = {"BENTOML_HOME": "/tmp/bentoml", "NUMBA_CACHE_DIR": "/tmp/numba"}
# MLflow's own variable names: the keys read from the credentials Secret and passed to the container.
CREDENTIAL_KEYS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
)


@dataclass(frozen=True)
class ServingDefaults:
    """The one place the serving defaults are written: the CRD, the spec parser and the service use it."""

    service_name: str = "ModelService"
    monitoring: bool = True
    log_inputs: bool = True
    drift_window_size: int = 500
    drift_window_min_rows: int = 100
    # The window test is re-run once this many new rows arrived.
    drift_window_every: int = 50
    # ...but not sooner than this many seconds after the previous one: under load, 50 rows arrive many
    # times a second, and a test per second per worker is all a scraped gauge or a chart can show.
    drift_window_min_seconds: float = 1.0
    max_rows: int = 1000
    max_body_bytes: int = 1 << 20
    # Requests one worker works on at once; the next is answered 503 with Retry-After at once, so that a
    # flood sheds load instead of starving the probes (and the kubelet restarting a healthy pod).
    max_concurrency: int = 16
    # The queue ahead of a worker (its event loop's lag, late at two probes in a row) past which requests
    # are shed the same way: the worker runs each request to its end in one go, so a flood's queue forms
    # there, where no in-flight count sees it. 250 ms: far below the probes' 3 s timeout, and above what a
    # replica that takes its crashed twin's connections on a busy node queues (about 100 ms).
    max_queue_ms: int = 250
    workers: int = 1


DEFAULTS = ServingDefaults()

# -- The serving container's HTTP surface ----------------------------------------------------------
HTTP_PORT = 3000
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
# The Open Inference Protocol's readiness: 200 once the models are loaded; 503 before, with the protocol's
# error object {"error": message, "reason": kind}, where the kind LOAD_FAILED says the last load attempt
# failed (the service keeps retrying) and the message names the model and why. The operator asks a canary
# pod that is not ready, so that a challenger whose models do not load is rolled back at once.
OIP_READY_PATH = "/v2/health/ready"
LOAD_FAILED = "ModelLoadError"

# -- Registry tags written by training, read by the operator -----------------------------------------
TRAINING_RUN_TAG = "modelops.training_run_id"
DATA_FINGERPRINT_TAG = "modelops.data_fingerprint"

# -- Registry tags written by a verifying ModelDeployment, read by a gated one and by `modelops promote` --
# "modelops.verified.<environment>" on each model version: a JSON record (modelops_operator.verification).
VERIFIED_TAG_PREFIX = "modelops.verified."


def flag(value: bool) -> str:
    """A boolean as the environment carries it."""
    return "true" if value else "false"
