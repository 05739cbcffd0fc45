"""The operator's settings: every environment variable it reads, parsed and checked once at start-up.

`OperatorSettings.load(os.environ)` is called once, when handlers.py is imported by `kopf run`; a bad
value raises ConfigurationError naming the variable, and start-up stops with that message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from modelops_operator.builders.ingress import DEFAULT_ANNOTATION_PREFIXES
from modelops_operator.spec import Build

ALIAS_POLL_ENV = "MODELOPS_ALIAS_POLL_SECONDS"
DRIFT_POLL_ENV = "MODELOPS_DRIFT_POLL_SECONDS"
METRICS_URL_ENV = "MODELOPS_METRICS_URL_TEMPLATE"
MAX_BACKOFF_ENV = "MODELOPS_MAX_BACKOFF_SECONDS"
OPERATOR_METRICS_ENV = "MODELOPS_OPERATOR_METRICS_ADDRESS"
POD_MONITOR_RETRY_ENV = "MODELOPS_POD_MONITOR_RETRY_SECONDS"
VERIFICATION_CHECK_ENV = "MODELOPS_VERIFICATION_CHECK_SECONDS"
GATE_POLL_ENV = "MODELOPS_GATE_POLL_SECONDS"
CANARY_POLL_ENV = "MODELOPS_CANARY_POLL_SECONDS"
CLUSTER_NAME_ENV = "MODELOPS_CLUSTER_NAME"
REGISTRY_TIMEOUT_ENV = "MODELOPS_REGISTRY_TIMEOUT_SECONDS"
REGISTRY_MAX_ANSWER_ENV = "MODELOPS_REGISTRY_MAX_ANSWER_BYTES"
REGISTRY_CALLS_PER_HOST_ENV = "MODELOPS_REGISTRY_CALLS_PER_HOST"
REGISTRY_HOSTS_ENV = "MODELOPS_REGISTRY_HOSTS"
INGRESS_ANNOTATIONS_ENV = "MODELOPS_INGRESS_ANNOTATION_PREFIXES"
BUILDER_IMAGES_ENV = "MODELOPS_BUILDER_IMAGES"
PLAIN_HTTP_REGISTRIES_ENV = "MODELOPS_PLAIN_HTTP_IMAGE_REGISTRIES"
INGRESS_CONTROLLER_ENV = "MODELOPS_INGRESS_CONTROLLER"
INGRESS_CONTROLLERS = ("", "traefik")
VERIFICATION_NAMESPACES_ENV = "MODELOPS_VERIFICATION_NAMESPACES"
OPERATOR_NAMESPACE_ENV = "MODELOPS_OPERATOR_NAMESPACE"
REGISTRY_WRITE_SECRETS_ENV = "MODELOPS_REGISTRY_WRITE_SECRETS"
VERIFICATION_MIN_SOAK_ENV = "MODELOPS_VERIFICATION_MIN_SOAK_SECONDS"
VERIFICATION_DRIFT_FREE_ENV = "MODELOPS_VERIFICATION_REQUIRE_DRIFT_FREE"
DEFAULT_METRICS_URL = "http://{address}:{port}/metrics"
# Placeholders a metrics URL template may use (drift_status.metrics_url fills them in).
METRICS_URL_FIELDS = {"address": "10.0.0.1", "port": 3000, "pod": "pod", "namespace": "ns", "name": "name"}


class ConfigurationError(ValueError):
    """A setting's value is unusable; the message names the variable and the value."""


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator process is configured with; defaults written here only."""

    # How often aliases are re-resolved (a moved alias rolls the pods).
    alias_poll_seconds: float = 60.0
    # How often the pods' drift windows are read into status.drift; 0 turns it off.
    drift_poll_seconds: float = 60.0
    # Where a pod's /metrics is read; the default is the pod IP as the EndpointSlice gives it.
    metrics_url_template: str = DEFAULT_METRICS_URL
    # The longest wait between retries of a temporary failure (the backoff doubles from 2 s up to it).
    max_backoff_seconds: float = 60.0
    # Waits that do not grow: a missing credentials Secret, a failed registry write-back.
    secret_retry_seconds: float = 30.0
    sync_retry_seconds: float = 30.0
    # A PodMonitor the cluster could not take (CRD missing, RBAC) is tried again this often.
    pod_monitor_retry_seconds: float = 300.0
    # host:port of the operator's own /metrics (modelops_operator.metrics); empty: not served.
    operator_metrics_address: str = ""
    # How often a soak (spec.verification) is looked at, and a gate (spec.gate) re-reads the registry.
    verification_check_seconds: float = 15.0
    gate_poll_seconds: float = 30.0
    # How often a running canary is looked at (its analyses keep to spec.canary.intervalSeconds).
    canary_poll_seconds: float = 5.0
    # The cluster's name in verification records (empty: not named).
    cluster_name: str = ""
    # Every registry call (connect, headers, body) ends within this many seconds, reads at most this many
    # bytes, and one registry host holds at most this many of the operator's threads at once: a tenant's
    # trackingUri cannot stall or exhaust the operator.
    registry_timeout_seconds: float = 10.0
    registry_max_answer_bytes: int = 8 << 20
    registry_calls_per_host: int = 4
    # The registry hosts (host or host:port, lower case) a trackingUri may name; empty: any.
    registry_hosts: frozenset[str] = frozenset()
    # The Ingress controller the operator configures through its own objects: "traefik" adds a retry
    # Middleware to every Ingress (a request no pod received goes to another); "": plain Ingresses.
    ingress_controller: str = ""
    # Ingress annotation key prefixes copied from a spec ("*": all); others are left out and named.
    ingress_annotation_prefixes: tuple[str, ...] = DEFAULT_ANNOTATION_PREFIXES
    # Builder images a spec.image.build may run ("*": any).
    builder_images: frozenset[str] = frozenset({Build.builder_image})
    # Image registries (host:port) that build Jobs speak to over plain HTTP, as a container runtime's
    # insecure-registries: the operator's to say, never a CR's. Empty: TLS everywhere.
    plain_http_registries: frozenset[str] = frozenset()
    # Verification is the operator's policy, not the CR's: which namespaces may record which environment
    # (environment -> namespaces, "*" for any; none by default: nothing is recorded until configured), the
    # shortest soak, and whether windows must be drift-free. A CR can only make them stricter.
    verification_namespaces: tuple[tuple[str, frozenset[str]], ...] = ()
    verification_min_soak_seconds: float = 600.0
    verification_require_drift_free: bool = True
    # The operator's own registry credentials for writes (stages, aliases, tags, verification records):
    # registry host (or host:port) -> a Secret in the operator's namespace. A host without one is written
    # to with the ModelDeployment's Secret, which its pods get too.
    operator_namespace: str = ""
    registry_write_secrets: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """The settings from an environment (os.environ by default); raises ConfigurationError."""
        env = os.environ if environ is None else environ
        return cls(
            alias_poll_seconds=seconds_setting(env, ALIAS_POLL_ENV, cls.alias_poll_seconds),
            drift_poll_seconds=seconds_setting(env, DRIFT_POLL_ENV, cls.drift_poll_seconds, allow_zero=True),
            metrics_url_template=metrics_url_template(env),
            max_backoff_seconds=seconds_setting(env, MAX_BACKOFF_ENV, cls.max_backoff_seconds),
            operator_metrics_address=listen_address(env, OPERATOR_METRICS_ENV),
            pod_monitor_retry_seconds=seconds_setting(
                env, POD_MONITOR_RETRY_ENV, cls.pod_monitor_retry_seconds
            ),
            verification_check_seconds=seconds_setting(
                env, VERIFICATION_CHECK_ENV, cls.verification_check_seconds
            ),
            gate_poll_seconds=seconds_setting(env, GATE_POLL_ENV, cls.gate_poll_seconds),
            canary_poll_seconds=seconds_setting(env, CANARY_POLL_ENV, cls.canary_poll_seconds),
            cluster_name=env.get(CLUSTER_NAME_ENV, "").strip(),
            registry_timeout_seconds=seconds_setting(env, REGISTRY_TIMEOUT_ENV, cls.registry_timeout_seconds),
            registry_max_answer_bytes=count_setting(
                env, REGISTRY_MAX_ANSWER_ENV, cls.registry_max_answer_bytes
            ),
            registry_calls_per_host=count_setting(
                env, REGISTRY_CALLS_PER_HOST_ENV, cls.registry_calls_per_host
            ),
            registry_hosts=host_list(env, REGISTRY_HOSTS_ENV),
            ingress_controller=choice_setting(env, INGRESS_CONTROLLER_ENV, INGRESS_CONTROLLERS),
            ingress_annotation_prefixes=tuple(
                sorted(word_list(env, INGRESS_ANNOTATIONS_ENV) or cls.ingress_annotation_prefixes)
            ),
            builder_images=word_list(env, BUILDER_IMAGES_ENV) or cls.builder_images,
            plain_http_registries=host_list(env, PLAIN_HTTP_REGISTRIES_ENV),
            verification_namespaces=environment_namespaces(env, VERIFICATION_NAMESPACES_ENV),
            verification_min_soak_seconds=seconds_setting(
                env, VERIFICATION_MIN_SOAK_ENV, cls.verification_min_soak_seconds, allow_zero=True
            ),
            verification_require_drift_free=flag_setting(
                env, VERIFICATION_DRIFT_FREE_ENV, cls.verification_require_drift_free
            ),
            operator_namespace=env.get(OPERATOR_NAMESPACE_ENV, "").strip(),
            registry_write_secrets=write_secrets(env),
        )

    def may_record(self, environment: str, namespace: str) -> bool:
        """Whether a ModelDeployment in `namespace` may have this operator record `environment`."""
        allowed = dict(self.verification_namespaces).get(environment, frozenset())
        return "*" in allowed or namespace in allowed

    def backoff(self, retry: int) -> float:
        """2, 4, 8 ... seconds for the n-th retry, capped at max_backoff_seconds."""
        return min(2.0 * 2 ** min(retry, 32), self.max_backoff_seconds)


def seconds_setting(environ: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    """A number of seconds from the environment variable `name` (unset or empty: `default`).

    Positive and finite; 0 too when `allow_zero` (a setting that 0 turns off).
    """
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds == math.inf:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be a number of seconds {bound}, not {raw!r}")
    return seconds


def count_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from the environment variable `name` (unset or empty: `default`)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigurationError(f"{name} must be a whole number > 0, not {raw!r}")
    return int(raw)


def flag_setting(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """true/false (also 1/0, yes/no) from the environment variable `name` (unset or empty: `default`)."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def environment_namespaces(environ: Mapping[str, str], name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """ "staging=ns-a,ns-b;qa=*" -> (("qa", {"*"}), ("staging", {"ns-a", "ns-b"})) (unset or empty: none)."""
    found = {}
    for entry in environ.get(name, "").split(";"):
        if not entry.strip():
            continue
        environment, equals, namespaces = entry.partition("=")
        listed = word_list({name: namespaces}, name)
        if not equals or not environment.strip() or not listed:
            raise ConfigurationError(f"{name} must read environment=namespace,...;..., not {entry.strip()!r}")
        found[environment.strip()] = listed
    return tuple(sorted(found.items()))


def write_secrets(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """MODELOPS_REGISTRY_WRITE_SECRETS: "host[:port]=secret;..." (needs MODELOPS_OPERATOR_NAMESPACE)."""
    found = {}
    for entry in environ.get(REGISTRY_WRITE_SECRETS_ENV, "").split(";"):
        if not entry.strip():
            continue
        host, equals, secret = (part.strip() for part in entry.partition("="))
        if not equals or not host_list({"x": host}, "x") or not secret or any(c.isspace() for c in secret):
            raise ConfigurationError(
                f"{REGISTRY_WRITE_SECRETS_ENV} must read host=secret;..., not {entry.strip()!r}"
            )
        found[host.lower()] = secret
    if found and not environ.get(OPERATOR_NAMESPACE_ENV, "").strip():
        raise ConfigurationError(
            f"{REGISTRY_WRITE_SECRETS_ENV} needs {OPERATOR_NAMESPACE_ENV} (where they are)"
        )
    return tuple(sorted(found.items()))


def word_list(environ: Mapping[str, str], name: str) -> frozenset[str]:
    """A comma-separated list of words without spaces (unset or empty: none)."""
    words = frozenset(w.strip() for w in environ.get(name, "").split(",") if w.strip())
    for word in words:
        if any(c.isspace() or not c.isprintable() for c in word):
            raise ConfigurationError(f"{name} must be a comma-separated list, not {word!r}")
    return words


def choice_setting(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (lower case; unset: the first)."""
    value = environ.get(name, "").strip().lower()
    if value not in choices:
        raise ConfigurationError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}, not {value!r}"
        )
    return value


def host_list(environ: Mapping[str, str], name: str) -> frozenset[str]:
    """A comma-separated list of host or host:port names, lower-cased (unset or empty: none)."""
    raw = environ.get(name, "").strip()
    hosts = frozenset(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        name_part, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        if not name_part or any(c.isspace() or c in "/@?#" for c in host) or (port and not port.isdigit()):
            raise ConfigurationError(f"{name} must list host or host:port names, not {host!r}")
    return hosts


def metrics_url_template(environ: Mapping[str, str]) -> str:
    """MODELOPS_METRICS_URL_TEMPLATE, checked: an http(s) URL that may use the METRICS_URL_FIELDS."""
    template = environ.get(METRICS_URL_ENV, "").strip() or DEFAULT_METRICS_URL
    try:
        template.format(**METRICS_URL_FIELDS)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigurationError(f"{METRICS_URL_ENV} {template!r} is not a valid template: {e}") from e
    if not template.startswith(("http://", "https://")):
        raise ConfigurationError(f"{METRICS_URL_ENV} must be an http(s) URL template, not {template!r}")
    return template


def listen_address(environ: Mapping[str, str], name: str) -> str:
    """A host:port to listen on (host may be empty for every address, or an IPv4/IPv6 literal or name);
    unset or empty: "" (nothing is served)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return ""
    host, colon, port = raw.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ConfigurationError(f"{name} must be host:port (for example 0.0.0.0:8081), not {raw!r}")
    return raw
