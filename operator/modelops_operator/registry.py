"""The MLflow model registry over its REST API: resolve versions/aliases and write deployments back.

A small stdlib client rather than `mlflow.MlflowClient`: importing mlflow's stores costs ~130 MB of RSS
per operator process, and the operator needs six endpoints of the stable 2.0 REST API. The component tests
compare its answers with MlflowClient's against a real `mlflow server`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_contract import CREDENTIAL_KEYS, TRAINING_RUN_TAG
from modelops_operator.spec import ROLES, ModelRef

DEFAULT_TIMEOUT_SECONDS = 5.0
# Told of every call: (endpoint, outcome: "ok" or the error class name, seconds). The operator hooks its
# metrics here (modelops_operator.registry_access); the CLI passes none.
CallObserver = Callable[[str, str, float], None]
# A version's run, source and READY status never change; its tags rarely do. An alias can move at any time,
# so its answer is only shared by reconciles of the same burst (e.g. 200 resources applied at once).
VERSION_TTL_SECONDS = 300.0
ALIAS_TTL_SECONDS = 5.0


class RegistryError(Exception):
    """A registry failure; `permanent` says whether retrying without a spec change can help."""

    permanent = False
    reason = "RegistryError"


class RegistryUnreachable(RegistryError):
    """The registry did not answer (connection refused, timeout, 5xx)."""

    reason = "RegistryUnreachable"


class RegistryUnauthorized(RegistryError):
    """The registry refused the credentials (401/403)."""

    permanent = True
    reason = "RegistryUnauthorized"


class ModelNotFound(RegistryError):
    """The model, version or alias does not exist."""

    permanent = True
    reason = "ModelNotFound"


class ModelNotReady(RegistryError):
    """The version exists but is not READY (PENDING_REGISTRATION is temporary, FAILED is not)."""

    reason = "ModelNotReady"

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Credentials:
    """Registry credentials, read from a Secret; never printed (repr hides values)."""

    token: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    databricks_host: str | None = field(default=None, repr=False)
    databricks_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str]) -> Credentials:
        """Build from a Secret's base64 `data` map (MLflow's own variable names as keys)."""
        plain = {k: base64.b64decode(v).decode() for k, v in data.items() if k in CREDENTIAL_KEYS}
        return cls(
            token=plain.get("MLFLOW_TRACKING_TOKEN"),
            username=plain.get("MLFLOW_TRACKING_USERNAME"),
            password=plain.get("MLFLOW_TRACKING_PASSWORD"),
            databricks_host=plain.get("DATABRICKS_HOST"),
            databricks_token=plain.get("DATABRICKS_TOKEN"),
        )


@dataclass(frozen=True)
class ResolvedModel:
    """A model version as found in the registry."""

    name: str
    version: str
    run_id: str
    source: str
    alias: str | None = None
    training_run_id: str | None = None

    @property
    def uri(self) -> str:
        """The models:/ URI the service loads."""
        return f"models:/{self.name}/{self.version}"

    def to_status(self) -> dict[str, str]:
        """The status.models.<role> entry."""
        entry = {"name": self.name, "version": self.version, "runId": self.run_id, "source": self.source}
        entry["uri"] = self.uri
        if self.alias:
            entry["alias"] = self.alias
        return entry

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> ResolvedModel:
        """Read back a status.models.<role> entry."""
        return cls(
            name=entry["name"],
            version=entry["version"],
            run_id=entry.get("runId", ""),
            source=entry.get("source", ""),
            alias=entry.get("alias"),
        )


@dataclass(frozen=True)
class Resolution:
    """The three resolved models and whether they come from one training run."""

    models: dict[str, ResolvedModel]
    training_run_id: str | None
    warning: str | None = None


def base_url(tracking_uri: str, credentials: Credentials) -> str:
    """The HTTP root for a tracking URI (`databricks` URIs use DATABRICKS_HOST)."""
    if tracking_uri.startswith("databricks"):
        if not credentials.databricks_host:
            raise RegistryUnauthorized(
                "a databricks tracking URI needs DATABRICKS_HOST in the credentials Secret"
            )
        return credentials.databricks_host.rstrip("/")
    return tracking_uri.rstrip("/")


def auth_headers(credentials: Credentials) -> dict[str, str]:
    """HTTP auth headers: a bearer token, or basic auth."""
    token = credentials.databricks_token or credentials.token
    if token:
        return {"Authorization": f"Bearer {token}"}
    if credentials.username is not None:
        pair = f"{credentials.username}:{credentials.password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {}


class TtlCache:
    """A small thread-safe cache of successful answers with per-entry expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    def fetch_lock(self, key: tuple[str, ...]) -> threading.Lock:
        """A lock per key, so that concurrent misses ask the registry once (single flight)."""
        with self._lock:
            return self._fetching.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        """The cached value, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self.clock():
                self._entries.pop(key, None)
                return None
            return entry[1]

    def put(self, key: tuple[str, ...], value: dict[str, Any], ttl: float) -> None:
        """Remember a value for ttl seconds."""
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
                self._fetching.clear()
            self._entries[key] = (self.clock() + ttl, value)


_answers = TtlCache()


class RegistryClient:
    """Six endpoints of MLflow's REST API 2.0, with typed errors; READY lookups are cached briefly."""

    def __init__(
        self,
        tracking_uri: str,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        on_call: CallObserver | None = None,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.on_call = on_call
        self.root = base_url(tracking_uri, self.credentials)
        self.timeout = timeout
        # Answers are shared only between clients of the same registry and the same credentials.
        auth = json.dumps(auth_headers(self.credentials), sort_keys=True).encode()
        self.identity = (self.root, hashlib.sha256(auth).hexdigest()[:16])
        self.cache = _answers

    def _cached_get(self, endpoint: str, params: dict[str, str], ttl: float) -> dict[str, Any]:
        key = (*self.identity, endpoint, *sorted(f"{k}={v}" for k, v in params.items()))
        found = self.cache.get(key)
        if found is not None:
            return found
        with self.cache.fetch_lock(key):
            found = self.cache.get(key)
            if found is None:
                found = self._call("GET", endpoint, params)["model_version"]
                if found.get("status", "READY") == "READY":
                    self.cache.put(key, found, ttl)
        return found

    def _call(self, method: str, endpoint: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self.root}/api/2.0/mlflow/{endpoint}"
        headers = {"Accept": "application/json", **auth_headers(self.credentials)}
        data = None
        if method == "GET":
            url += "?" + urllib.parse.urlencode(payload)
        else:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        started, outcome = time.monotonic(), "ok"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            error = _http_error(endpoint, e)
            outcome = type(error).__name__
            raise error from e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            outcome = RegistryUnreachable.__name__
            raise RegistryUnreachable(f"registry at {self.root} unreachable: {_reason(e)}") from e
        finally:
            if self.on_call is not None:
                self.on_call(endpoint, outcome, time.monotonic() - started)

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        """A model version (name, version, current_stage, status, run_id, source, tags, aliases)."""
        return self._cached_get("model-versions/get", {"name": name, "version": version}, VERSION_TTL_SECONDS)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """A version's tags as they are now (not cached: a gate waits for a tag to appear)."""
        found = self._call("GET", "model-versions/get", {"name": name, "version": version})["model_version"]
        return _tags(found)

    def search_versions(self, name: str, max_results: int = 200) -> list[dict[str, Any]]:
        """The versions of a registered model, newest first, with their tags."""
        payload = {
            "filter": f"name='{name}'",
            "max_results": str(max_results),
            "order_by": "version_number DESC",
        }
        found = self._call("GET", "model-versions/search", payload).get("model_versions") or ()
        return sorted(found, key=lambda v: int(v["version"]), reverse=True)

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        """The version an alias points at."""
        return self._cached_get("registered-models/alias", {"name": name, "alias": alias}, ALIAS_TTL_SECONDS)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A tracking run (info, data.tags)."""
        return self._call("GET", "runs/get", {"run_id": run_id})["run"]

    def transition_stage(self, name: str, version: str, stage: str, archive_existing: bool) -> None:
        """Move a version to a stage (deprecated by MLflow, still what its users query)."""
        payload = {
            "name": name,
            "version": version,
            "stage": stage,
            "archive_existing_versions": archive_existing,
        }
        self._call("POST", "model-versions/transition-stage", payload)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point an alias at a version."""
        self._call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": version})

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        """Set a tag on a version."""
        self._call(
            "POST", "model-versions/set-tag", {"name": name, "version": version, "key": key, "value": value}
        )


def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None)
    return str(inner if inner is not None else e)


def _http_error(endpoint: str, e: urllib.error.HTTPError) -> RegistryError:
    try:
        body = json.loads(e.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    code = body.get("error_code", "")
    message = body.get("message") or e.reason
    if e.code in (401, 403):
        return RegistryUnauthorized(f"registry refused the request ({e.code}): {message}")
    if e.code == 404 or code == "RESOURCE_DOES_NOT_EXIST":
        return ModelNotFound(str(message))
    if e.code >= 500 or e.code == 429:
        return RegistryUnreachable(f"registry error {e.code} on {endpoint}: {message}")
    return ModelNotFound(f"registry rejected {endpoint} ({code or e.code}): {message}")


def _tags(version: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in version.get("tags") or ()}


def resolve_model(client: RegistryClient, ref: ModelRef) -> ResolvedModel:
    """Resolve one reference to a READY version."""
    if ref.alias is not None:
        try:
            found = client.get_model_version_by_alias(ref.name, ref.alias)
        except ModelNotFound as e:
            raise ModelNotFound(f"model {ref.name} has no alias {ref.alias}") from e
    else:
        try:
            found = client.get_model_version(ref.name, str(ref.version))
        except ModelNotFound as e:
            raise ModelNotFound(f"model {ref.name} version {ref.version} not found") from e
    status = found.get("status", "READY")
    if status != "READY":
        raise ModelNotReady(
            f"model {ref.name} version {found['version']} is {status}",
            permanent=status == "FAILED_REGISTRATION",
        )
    return ResolvedModel(
        name=ref.name,
        version=str(found["version"]),
        run_id=found.get("run_id", ""),
        source=found.get("source", ""),
        alias=ref.alias,
        training_run_id=_tags(found).get(TRAINING_RUN_TAG),
    )


def training_run_of(client: RegistryClient, model: ResolvedModel) -> str:
    """The training run a version came from: its tag, else its run's parent, else its run."""
    if model.training_run_id:
        return model.training_run_id
    if not model.run_id:
        return ""
    tags = {t["key"]: t["value"] for t in client.get_run(model.run_id).get("data", {}).get("tags") or ()}
    return tags.get("mlflow.parentRunId", model.run_id)


def consistency_warning(runs: Mapping[str, str]) -> str | None:
    """A warning when the roles' training runs differ (pure)."""
    if len(set(runs.values())) <= 1 and all(runs.values()):
        return None
    listed = ", ".join(f"{role}={run or 'unknown'}" for role, run in runs.items())
    return f"models come from different training runs ({listed})"


def resolve_models(client: RegistryClient, refs: Mapping[str, ModelRef]) -> Resolution:
    """Resolve the three roles and check they come from one training run."""
    models = {role: resolve_model(client, refs[role]) for role in ROLES}
    runs = {role: training_run_of(client, m) for role, m in models.items()}
    warning = consistency_warning(runs)
    return Resolution(models=models, training_run_id=None if warning else runs["predictor"], warning=warning)
