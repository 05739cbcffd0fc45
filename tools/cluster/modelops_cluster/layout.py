"""Where a local control plane keeps its files, and which loopback ports it listens on."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    """One loopback port per listener, chosen at run time."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def pick_ports() -> Ports:
    """Distinct free ports for every listener."""
    # Hold every socket open until all are chosen so the OS cannot hand out the same port twice.
    sockets = []
    try:
        for _ in range(6):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return Ports(*(int(s.getsockname()[1]) for s in sockets))
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class Layout:
    """Paths under one working directory plus the ports and address ranges of one control plane."""

    workdir: Path
    ports: Ports
    service_cluster_ip_range: str = "10.96.0.0/16"
    pod_cidr: str = "10.244.0.0/16"
    node_name: str = "kwok-node-0"

    @property
    def apiserver_url(self) -> str:
        return f"https://{HOST}:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        return f"http://{HOST}:{self.ports.etcd_client}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{HOST}:{self.ports.etcd_peer}"

    @property
    def etcd_data_dir(self) -> Path:
        return self.workdir / "etcd"

    @property
    def pki_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig for users, tests and kubectl."""
        return self.workdir / "kubeconfig"

    def component_kubeconfig(self, component: str) -> Path:
        return self.workdir / "kubeconfigs" / f"{component}.yaml"

    def cert_dir(self, component: str) -> Path:
        return self.workdir / "certs" / component

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pki_file(self, name: str) -> Path:
        return self.pki_dir / name

    @property
    def kwok_config(self) -> Path:
        return self.workdir / "kwok.yaml"
