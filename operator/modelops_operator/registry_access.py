"""The registry client of one reconcile pass: the credentials Secret read at most once, when first needed.

Every step that talks to the registry (resolve, gate, write-back, verification record, alias poll) asks
the pass's RegistryAccess for its client; a missing Secret is a RegistryError like any other (temporary:
the Secret may come), so the steps handle registry trouble in one way.
"""

from __future__ import annotations

from modelops_operator import metrics
from modelops_operator.kube import Kube
from modelops_operator.registry import Credentials, RegistryClient, RegistryError
from modelops_operator.spec import Registry


class CredentialsMissing(RegistryError):
    """spec.registry.credentialsSecret names a Secret that does not exist (yet)."""

    reason = "CredentialsSecretMissing"


class RegistryAccess:
    """Lazily, once: the Secret's credentials and the RegistryClient built on them."""

    def __init__(self, kube: Kube, namespace: str, registry: Registry) -> None:
        self.kube = kube
        self.namespace = namespace
        self.registry = registry
        self._client: RegistryClient | None = None

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
        """The client for this pass (raises CredentialsMissing, or KubeError reading the Secret)."""
        if self._client is None:
            self._client = RegistryClient(
                self.registry.tracking_uri, self.credentials(), on_call=metrics.observe_registry_call
            )
        return self._client
