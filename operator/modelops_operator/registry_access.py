"""The registry client of one reconcile pass: the credentials Secret read at most once, when first needed.

Every step that talks to the registry (resolve, gate, write-back, verification record, alias poll) asks
the pass's RegistryAccess for its client; a missing Secret is a RegistryError like any other (temporary:
the Secret may come), so the steps handle registry trouble in one way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from modelops_operator import metrics
from modelops_operator.kube import Kube
from modelops_operator.registry import Credentials, RegistryClient, RegistryError, base_url
from modelops_operator.settings import OperatorSettings
from modelops_operator.spec import Registry


class CredentialsMissing(RegistryError):
    """spec.registry.credentialsSecret names a Secret that does not exist (yet)."""

    reason = "CredentialsSecretMissing"


class RegistryNotAllowed(RegistryError):
    """The trackingUri names a host outside the operator's MODELOPS_REGISTRY_HOSTS."""

    permanent = True
    reason = "RegistryNotAllowed"


def host_keys(root: str) -> tuple[str, ...]:
    """The names a registry root is listed under in the settings: host:port first, then host."""
    parts = urlsplit(root)
    host = (parts.hostname or "").lower()
    return (f"{host}:{parts.port}", host) if parts.port is not None else (host,)


def allowed(root: str, hosts: frozenset[str]) -> bool:
    """Whether the registry at `root` may be called: any host when `hosts` is empty, else a listed one
    (by host, or by host:port)."""
    return not hosts or any(key in hosts for key in host_keys(root))


class RegistryAccess:
    """Lazily, once: the Secret's credentials and the RegistryClient built on them."""

    def __init__(self, kube: Kube, namespace: str, registry: Registry, settings: OperatorSettings) -> None:
        self.kube = kube
        self.namespace = namespace
        self.registry = registry
        self.settings = settings
        self._client: RegistryClient | None = None
        self._writer: RegistryClient | None = None

    def credentials(self) -> Credentials:
        """The credentials of spec.registry (anonymous without a Secret); raises CredentialsMissing."""
        secret = self.registry.credentials_secret
        if not secret:
            return Credentials()
        data = self.kube.secret_data(self.namespace, secret)
        if data is None:
            raise CredentialsMissing(f"registry credentials Secret {secret} not found")
        return Credentials.from_secret_data(data)

    def client(self) -> RegistryClient:
        """The client for this pass's reads: RegistryNotAllowed for a host the operator may not call
        (checked before the Secret is read, but for databricks URIs, whose host is in the Secret),
        CredentialsMissing, or KubeError reading the Secret."""
        if self._client is None:
            uri = self.registry.tracking_uri
            databricks = uri.startswith("databricks")
            if not databricks:
                self._check_allowed(uri)
            credentials = self.credentials()
            if databricks:  # its host is in the Secret
                self._check_allowed(base_url(uri, credentials))
            self._client = self._connect(credentials)
        return self._client

    def writer(self) -> RegistryClient:
        """The client for writes (stages, aliases, tags, verification records): the operator's own
        credentials for this registry host when MODELOPS_REGISTRY_WRITE_SECRETS names a Secret for it (in
        the operator's namespace), else the spec's, as for reads."""
        if self._writer is None:
            reader = self.client()
            secrets = dict(self.settings.registry_write_secrets)
            secret = next((secrets[k] for k in host_keys(reader.root) if k in secrets), None)
            if secret is None:
                self._writer = reader
            else:
                data = self.kube.secret_data(self.settings.operator_namespace, secret)
                if data is None:
                    raise CredentialsMissing(f"the operator's registry credentials Secret {secret} not found")
                self._writer = self._connect(Credentials.from_secret_data(data))
        return self._writer

    def _check_allowed(self, root: str) -> None:
        if not allowed(root, self.settings.registry_hosts):
            raise RegistryNotAllowed("the trackingUri's host is not one this operator may call")

    def _connect(self, credentials: Credentials) -> RegistryClient:
        return RegistryClient(
            self.registry.tracking_uri,
            credentials,
            timeout=self.settings.registry_timeout_seconds,
            on_call=metrics.observe_registry_call,
            max_answer_bytes=self.settings.registry_max_answer_bytes,
            calls_per_host=self.settings.registry_calls_per_host,
        )
