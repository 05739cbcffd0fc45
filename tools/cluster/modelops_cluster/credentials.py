"""The control plane's PKI and kubeconfigs, written into its working directory."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from modelops_cluster.flags import FRONT_PROXY_CLIENT
from modelops_cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from modelops_cluster.layout import HOST, Layout
from modelops_cluster.nodeconfig import REAL_NODE_NAME
from modelops_cluster.pki import create_ca, issue_certificate, key_to_pem, new_key, public_key_to_pem

# Who each kubeconfig authenticates as: (user name = certificate CN, groups = certificate O).
# The controller-manager and the scheduler get their built-in RBAC roles; the admin and kwok (which plays
# the kubelet of every fake Node) are cluster-admin through system:masters.
# The real node's kubelet is a Node identity (Node authorizer), kube-proxy gets system:node-proxier by its
# built-in binding; Traefik and the API server's kubelet client are cluster-admin (test harness only).
IDENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("modelops-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kwok": ("kwok", ("system:masters",)),
    "kubelet": (f"system:node:{REAL_NODE_NAME}", ("system:nodes",)),
    "kube-proxy": ("system:kube-proxy", ()),
    "traefik": ("modelops-traefik", ("system:masters",)),
}
KUBELET_CLIENT = ("kube-apiserver-kubelet-client", ("system:masters",))


def apiserver_dns_names() -> tuple[str, ...]:
    return (
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )


def apiserver_ip_addresses(service_cluster_ip_range: str) -> tuple[str, ...]:
    """Loopback plus the `kubernetes` Service's ClusterIP (the first address of the range)."""
    return (HOST, str(ipaddress.ip_network(service_cluster_ip_range)[1]))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_credentials(layout: Layout) -> None:
    """CA, API server serving certificate, service-account keys, and one kubeconfig per identity."""
    pki = layout.pki_file
    ca, ca_key = create_ca()
    _write(pki("ca.crt"), ca.cert_pem)
    _write(pki("ca.key"), ca.key_pem, private=True)

    serving = issue_certificate(
        ca,
        ca_key,
        "kube-apiserver",
        dns_names=apiserver_dns_names(),
        ip_addresses=apiserver_ip_addresses(layout.service_cluster_ip_range),
        server=True,
    )
    _write(pki("apiserver.crt"), serving.cert_pem)
    _write(pki("apiserver.key"), serving.key_pem, private=True)

    front_proxy_ca, front_proxy_ca_key = create_ca("modelops-front-proxy-ca")
    _write(pki("front-proxy-ca.crt"), front_proxy_ca.cert_pem)
    front_proxy = issue_certificate(front_proxy_ca, front_proxy_ca_key, FRONT_PROXY_CLIENT)
    _write(pki("front-proxy-client.crt"), front_proxy.cert_pem)
    _write(pki("front-proxy-client.key"), front_proxy.key_pem, private=True)

    kubelet_client = issue_certificate(ca, ca_key, KUBELET_CLIENT[0], organizations=KUBELET_CLIENT[1])
    _write(pki("apiserver-kubelet-client.crt"), kubelet_client.cert_pem)
    _write(pki("apiserver-kubelet-client.key"), kubelet_client.key_pem, private=True)

    sa_key = new_key()
    _write(pki("sa.key"), key_to_pem(sa_key), private=True)
    _write(pki("sa.pub"), public_key_to_pem(sa_key))

    for component, (user, groups) in IDENTITIES.items():
        client = issue_certificate(ca, ca_key, user, organizations=groups)
        config = build_kubeconfig(layout.apiserver_url, ca.cert_pem, client, user)
        if component == "admin":
            # The admin pair also as files, for health probes over plain urllib.
            _write(pki("admin.crt"), client.cert_pem)
            _write(pki("admin.key"), client.key_pem, private=True)
            write_kubeconfig(layout.kubeconfig, config)
        else:
            write_kubeconfig(layout.component_kubeconfig(component), config)
