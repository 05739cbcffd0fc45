"""PKI, kubeconfig writer and fake Node builder of the local control plane."""

from __future__ import annotations

import base64
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config

from modelops_cluster.credentials import IDENTITIES, apiserver_ip_addresses, write_credentials
from modelops_cluster.flags import apiserver_args
from modelops_cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from modelops_cluster.layout import Layout, Ports
from modelops_cluster.node import NODE_RESOURCES, build_fake_node, is_node_ready
from modelops_cluster.pki import create_ca, issue_certificate


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_client_certificate_is_signed_by_the_ca_with_user_and_groups() -> None:
    ca, ca_key = create_ca()
    leaf = issue_certificate(ca, ca_key, "alice", organizations=("system:masters", "devs"))
    cert = load(leaf.cert_pem)
    cert.verify_directly_issued_by(load(ca.cert_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    groups = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    assert groups == {"system:masters", "devs"}
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_serving_certificate_names_loopback_and_the_kubernetes_service() -> None:
    ca, ca_key = create_ca()
    ips = apiserver_ip_addresses("10.96.0.0/16")
    assert ips == ("127.0.0.1", "10.96.0.1")
    leaf = issue_certificate(
        ca, ca_key, "kube-apiserver", dns_names=("kubernetes",), ip_addresses=ips, server=True
    )
    san = load(leaf.cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address(i) for i in ips}
    assert san.get_values_for_type(x509.DNSName) == ["kubernetes"]


def test_kubeconfig_round_trips_through_the_kubernetes_client(tmp_path: Path) -> None:
    ca, ca_key = create_ca()
    leaf = issue_certificate(ca, ca_key, "alice")
    document = build_kubeconfig("https://127.0.0.1:6443", ca.cert_pem, leaf, "alice")
    path = write_kubeconfig(tmp_path / "sub" / "kubeconfig", document)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = yaml.safe_load(path.read_text())
    assert base64.b64decode(loaded["clusters"][0]["cluster"]["certificate-authority-data"]) == ca.cert_pem
    assert base64.b64decode(loaded["users"][0]["user"]["client-key-data"]) == leaf.key_pem

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.ssl_ca_cert is not None
    assert configuration.cert_file is not None
    assert Path(configuration.ssl_ca_cert).read_bytes() == ca.cert_pem
    assert Path(configuration.cert_file).read_bytes() == leaf.cert_pem


def test_write_credentials_gives_every_identity_a_kubeconfig(tmp_path: Path) -> None:
    layout = Layout(tmp_path, Ports(1, 2, 3, 4, 5, 6))
    write_credentials(layout)
    for flag in apiserver_args(layout):
        value = flag.split("=", 1)[1]
        if value.startswith(str(layout.pki_dir)):
            assert Path(value).is_file(), f"{flag} names a file write_credentials did not write"
    for name in ("admin.crt", "admin.key"):
        assert layout.pki_file(name).is_file(), name
    front_proxy = load(layout.pki_file("front-proxy-client.crt").read_bytes())
    front_proxy.verify_directly_issued_by(load(layout.pki_file("front-proxy-ca.crt").read_bytes()))
    assert stat.S_IMODE(layout.pki_file("sa.key").stat().st_mode) == 0o600
    ca = load(layout.pki_file("ca.crt").read_bytes())
    for component, (user, _groups) in IDENTITIES.items():
        path = layout.kubeconfig if component == "admin" else layout.component_kubeconfig(component)
        document = yaml.safe_load(path.read_text())
        assert document["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:3"
        cert = load(base64.b64decode(document["users"][0]["user"]["client-certificate-data"]))
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user


def test_fake_node_is_annotated_for_kwok_with_room_for_many_pods() -> None:
    node = build_fake_node("n1")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["status"]["allocatable"] == NODE_RESOURCES
    assert int(NODE_RESOURCES["pods"]) >= 500
    assert "taints" not in node["spec"]


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [
        ([{"type": "Ready", "status": "True"}], True),
        ([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}], False),
        ([{"type": "Ready", "status": "Unknown"}], False),
        ([], False),
        (None, False),
    ],
)
def test_is_node_ready(conditions: list[dict[str, str]] | None, ready: bool) -> None:
    assert is_node_ready({"status": {"conditions": conditions}}) is ready
