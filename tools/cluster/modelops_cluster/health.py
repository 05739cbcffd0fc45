"""HTTP health probes of the components."""

from __future__ import annotations

import ssl

from modelops_support.probes import probe

__all__ = ["client_context", "insecure_context", "probe"]


def insecure_context() -> ssl.SSLContext:
    """A TLS context for the self-signed loopback endpoints of the controller-manager and the scheduler."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS context that verifies the API server against the CA and presents a client certificate."""
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(cert_file, key_file)
    return context
