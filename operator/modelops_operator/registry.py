"""The MLflow model registry over its REST API: resolve versions/aliases and write deployments back.

A small stdlib client rather than `mlflow.MlflowClient`: importing mlflow's stores costs ~130 MB of RSS
per operator process, and the operator needs six endpoints of the stable 2.0 REST API. The component tests
compare its answers with MlflowClient's against a real `mlflow server`.

The tracking URI is a tenant's value: every call is bounded (bounded_http: a total deadline, a byte cap,
no redirects, so the credentials never leave the URI's origin), a registry host holds at most a few of
the operator's threads at once, and every failure is a RegistryError whose message is short and never
echoes the server at length.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_contract import CREDENTIAL_KEYS, TRAINING_RUN_TAG
from modelops_operator import bounded_http
from modelops_operator.spec import ROLES, ModelRef

DEFAULT_TIMEOUT_SECONDS = 10.0  # the whole call: connect, headers and body
DEFAULT_MAX_ANSWER_BYTES = 8 << 20  # a search over 200 versions with their tags is well below
DEFAULT_CALLS_PER_HOST = 4  # a slow registry host holds at most this many of the operator's threads
# How long a call waits for one of its host's slots before it is RegistryBusy (retried later): a call to a
# healthy registry takes milliseconds, so only a host that holds its slots makes its resources wait.
SLOT_WAIT_SECONDS = 1.0
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


class RegistryMisbehaving(RegistryError):
    """The URI's server answered in a way no MLflow registry does (a redirect, an endless or non-JSON
    answer): the spec must point elsewhere."""

    permanent = True
    reason = "RegistryMisbehaving"


class RegistryBusy(RegistryError):
    """This operator already has as many calls in flight to that host as it allows."""

    reason = "RegistryBusy"


class CredentialsInvalid(RegistryError):
    """The credentials Secret holds a value that is not text."""

    permanent = True
    reason = "CredentialsSecretInvalid"


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
        try:
            plain = {k: base64.b64decode(v).decode() for k, v in data.items() if k in CREDENTIAL_KEYS}
        except ValueError as e:  # not base64, or not UTF-8 (binascii.Error and UnicodeDecodeError)
            raise CredentialsInvalid("the credentials Secret holds a value that is not UTF-8 text") from e
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
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        calls_per_host: int = DEFAULT_CALLS_PER_HOST,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.on_call = on_call
        self.root = base_url(tracking_uri, self.credentials)
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.slots = host_slots(self.root, calls_per_host)
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
                found = _field(self._call("GET", endpoint, params), "model_version", endpoint)
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
        started, outcome = time.monotonic(), "ok"
        try:
            return self._answer(method, endpoint, url, headers, data)
        except RegistryError as e:
            outcome = type(e).__name__
            raise
        finally:
            if self.on_call is not None:
                self.on_call(endpoint, outcome, time.monotonic() - started)

    def _answer(
        self, method: str, endpoint: str, url: str, headers: Mapping[str, str], data: bytes | None
    ) -> dict[str, Any]:
        """One bounded call, holding one of the host's slots; its JSON object, or a RegistryError."""
        if not self.slots.acquire(timeout=min(self.timeout, SLOT_WAIT_SECONDS)):
            raise RegistryBusy(f"registry at {_shown(self.root)} is busy with this operator's other calls")
        try:
            answer = bounded_http.call(method, url, headers, data, self.timeout, self.max_answer_bytes)
        except bounded_http.HttpFailure as e:
            shown = _shown(self.root)
            if e.kind in (bounded_http.TOO_LARGE, bounded_http.REDIRECTED):
                raise RegistryMisbehaving(f"registry at {shown}: {e.kind} on {endpoint}") from e
            raise RegistryUnreachable(f"registry at {shown} unreachable: {e.kind}") from e
        finally:
            self.slots.release()
        if answer.status >= 400:
            raise _http_error(endpoint, answer.status, answer.body)
        try:
            found = json.loads(answer.body or b"{}")
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise RegistryMisbehaving(f"registry at {_shown(self.root)}: not MLflow's JSON on {endpoint}")
        return found

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        """A model version (name, version, current_stage, status, run_id, source, tags, aliases)."""
        return self._cached_get("model-versions/get", {"name": name, "version": version}, VERSION_TTL_SECONDS)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """A version's tags as they are now (not cached: a gate waits for a tag to appear)."""
        answer = self._call("GET", "model-versions/get", {"name": name, "version": version})
        return _tags(_field(answer, "model_version", "model-versions/get"))

    def search_versions(self, name: str, max_results: int = 200) -> list[dict[str, Any]]:
        """The versions of a registered model, newest first, with their tags."""
        payload = {
            "filter": f"name='{name}'",
            "max_results": str(max_results),
            "order_by": "version_number DESC",
        }
        found = self._call("GET", "model-versions/search", payload).get("model_versions")
        versions = [v for v in found if _version_of(v)] if isinstance(found, list) else []
        return sorted(versions, key=lambda v: int(_version_of(v)), reverse=True)

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        """The version an alias points at."""
        return self._cached_get("registered-models/alias", {"name": name, "alias": alias}, ALIAS_TTL_SECONDS)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A tracking run (info, data.tags)."""
        return _field(self._call("GET", "runs/get", {"run_id": run_id}), "run", "runs/get")

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


_slots: dict[str, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def host_slots(root: str, calls_per_host: int) -> threading.BoundedSemaphore:
    """The semaphore that bounds this process's calls in flight to the host of `root`."""
    host = (urllib.parse.urlsplit(root).netloc or root).lower()
    with _slots_lock:
        return _slots.setdefault(host, threading.BoundedSemaphore(calls_per_host))


def _clean(text: object, limit: int = 160) -> str:
    """A remote or tenant text fit for a status or a log line: printable, one line, at most `limit`."""
    printable = "".join(c if c.isprintable() else " " for c in str(text))
    return printable if len(printable) <= limit else printable[: limit - 3] + "..."


def _shown(root: str) -> str:
    """The registry's origin as a status shows it (no path, no user info), bounded."""
    parts = urllib.parse.urlsplit(root)
    host = parts.hostname or root
    return _clean(f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else ""), 100)


def _version_of(entry: object) -> str:
    """A model version entry's version number as text ("" when the entry has none)."""
    version = entry.get("version") if isinstance(entry, dict) else None
    return str(version) if isinstance(version, int | str) and str(version).isdigit() else ""


def _field(answer: Mapping[str, Any], key: str, endpoint: str) -> dict[str, Any]:
    """answer[key] as the object MLflow sends, or RegistryMisbehaving."""
    value = answer.get(key)
    if not isinstance(value, dict):
        raise RegistryMisbehaving(f"the registry's answer to {endpoint} has no {key} object")
    return value


def _http_error(endpoint: str, status: int, body: bytes) -> RegistryError:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    code = _clean(parsed.get("error_code", ""), 60)
    message = _clean(parsed.get("message") or f"HTTP {status}")
    if status in (401, 403):
        return RegistryUnauthorized(f"registry refused the request ({status}): {message}")
    if status == 404 or code == "RESOURCE_DOES_NOT_EXIST":
        return ModelNotFound(message)
    if status >= 500 or status == 429:
        return RegistryUnreachable(f"registry error {status} on {endpoint}: {message}")
    return ModelNotFound(f"registry rejected {endpoint} ({code or status}): {message}")


def _tags(entity: Mapping[str, Any]) -> dict[str, str]:
    """The {key: value} of an MLflow entity's tag list (entries that are not tags are left out)."""
    tags = entity.get("tags")
    entries = tags if isinstance(tags, list) else ()
    return {
        str(t["key"]): str(t.get("value", ""))
        for t in entries
        if isinstance(t, dict) and isinstance(t.get("key"), str)
    }


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
    version = _version_of(found)
    if not version:
        raise RegistryMisbehaving(f"the registry's answer for model {ref.name} has no version number")
    status = found.get("status", "READY")
    if status != "READY":
        raise ModelNotReady(
            f"model {ref.name} version {version} is {_clean(status, 40)}",
            permanent=status == "FAILED_REGISTRATION",
        )
    return ResolvedModel(
        name=ref.name,
        version=version,
        run_id=_clean(found.get("run_id") or "", 64),
        source=_clean(found.get("source") or "", 1000),
        alias=ref.alias,
        training_run_id=_clean(_tags(found).get(TRAINING_RUN_TAG) or "", 64) or None,
    )


def training_run_of(client: RegistryClient, model: ResolvedModel) -> str:
    """The training run a version came from: its tag, else its run's parent, else its run."""
    if model.training_run_id:
        return model.training_run_id
    if not model.run_id:
        return ""
    data = client.get_run(model.run_id).get("data")
    tags = _tags(data) if isinstance(data, dict) else {}
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
