"""Command-line builders of the control-plane components."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_cluster import flags
from modelops_cluster.layout import Layout, Ports, pick_ports

PORTS = Ports(
    etcd_client=20001, etcd_peer=20002, apiserver=20003, controller_manager=20004, scheduler=20005, kwok=20006
)
LAYOUT = Layout(Path("/w"), PORTS)
ALL_ARGS = {
    "etcd": flags.etcd_args(LAYOUT),
    "kube-apiserver": flags.apiserver_args(LAYOUT),
    "kube-controller-manager": flags.controller_manager_args(LAYOUT),
    "kube-scheduler": flags.scheduler_args(LAYOUT),
    "kwok": flags.kwok_args(LAYOUT),
}


def as_dict(args: list[str]) -> dict[str, str]:
    """--name=value flags as a mapping (every builder uses the = form)."""
    assert all(a.startswith("--") and "=" in a for a in args), args
    return dict(a[2:].split("=", 1) for a in args)


@pytest.mark.parametrize("component", sorted(ALL_ARGS))
def test_every_listener_is_loopback(component: str) -> None:
    text = " ".join(ALL_ARGS[component])
    assert "0.0.0.0" not in text
    assert "localhost" not in text


@pytest.mark.parametrize("component", sorted(ALL_ARGS))
def test_no_flag_is_given_twice(component: str) -> None:
    names = [a.split("=", 1)[0] for a in ALL_ARGS[component]]
    assert len(names) == len(set(names))


def test_etcd_single_member_on_its_ports() -> None:
    args = as_dict(flags.etcd_args(LAYOUT))
    assert args["listen-client-urls"] == "http://127.0.0.1:20001"
    assert args["initial-cluster"] == "default=http://127.0.0.1:20002"
    assert args["data-dir"] == "/w/etcd"


def test_apiserver_has_rbac_client_ca_and_service_account_keys() -> None:
    args = as_dict(flags.apiserver_args(LAYOUT))
    assert args["etcd-servers"] == "http://127.0.0.1:20001"
    assert args["secure-port"] == "20003"
    assert args["bind-address"] == args["advertise-address"] == "127.0.0.1"
    assert "RBAC" in args["authorization-mode"].split(",")
    assert args["client-ca-file"] == "/w/pki/ca.crt"
    assert args["service-account-key-file"] == "/w/pki/sa.pub"
    assert args["service-account-signing-key-file"] == "/w/pki/sa.key"
    assert args["service-account-issuer"].startswith("https://")


@pytest.mark.parametrize(
    ("builder", "component", "port"),
    [
        (flags.controller_manager_args, "kube-controller-manager", "20004"),
        (flags.scheduler_args, "kube-scheduler", "20005"),
    ],
)
def test_controllers_use_their_own_kubeconfig_and_no_leader_election(
    builder: Callable[[Layout], list[str]], component: str, port: str
) -> None:
    args = as_dict(builder(LAYOUT))
    assert args["kubeconfig"] == f"/w/kubeconfigs/{component}.yaml"
    assert args["leader-elect"] == "false"
    assert args["secure-port"] == port
    assert args["cert-dir"] == f"/w/certs/{component}"


def test_controller_manager_signs_service_account_tokens() -> None:
    args = as_dict(flags.controller_manager_args(LAYOUT))
    assert args["service-account-private-key-file"] == "/w/pki/sa.key"
    assert args["root-ca-file"] == "/w/pki/ca.crt"
    assert args["use-service-account-credentials"] == "true"
    assert args["controllers"] == "*"


def test_kwok_manages_only_annotated_nodes_with_our_stages() -> None:
    args = as_dict(flags.kwok_args(LAYOUT))
    assert args["manage-all-nodes"] == "false"
    assert args["manage-nodes-with-annotation-selector"] == "kwok.x-k8s.io/node=fake"
    assert args["config"] == "/w/kwok.yaml"
    assert args["server-address"] == "127.0.0.1:20006"


def test_health_urls_cover_every_component_on_loopback() -> None:
    urls = flags.health_urls(LAYOUT)
    assert set(urls) == set(ALL_ARGS)
    assert urls["kube-apiserver"] == "https://127.0.0.1:20003/readyz"
    assert all("//127.0.0.1:" in u for u in urls.values())


def test_pick_ports_gives_distinct_ports() -> None:
    ports = pick_ports()
    values = list(ports.__dict__.values())
    assert len(set(values)) == len(values) == 6
    assert all(1024 <= p <= 65535 for p in values)
