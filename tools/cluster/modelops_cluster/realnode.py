"""A real node beside the local control plane: containerd + runc + CNI bridge, kubelet, kube-proxy, and
Traefik as the Ingress controller. Pods run real processes on the project's bridge (hostnet.py).

Start order: leftovers of a dead run removed -> host network -> containerd (after a scrub of the kept
image store) -> pause image -> kubelet -> kube-proxy -> Traefik -> the OCI registry
(oci_registry.py). Stop: the reverse, then every change to
the host undone (hostnet.tear_down), whether or not the processes stopped by themselves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from modelops_cluster import hostnet
from modelops_cluster.images import Containerd, ImageError
from modelops_cluster.layout import HOST, Layout
from modelops_cluster.nodeconfig import (
    PAUSE_IMAGE,
    REAL_NODE_NAME,
    NodeNetwork,
    NodePaths,
    cni_config,
    containerd_config,
    containerd_socket,
    kube_proxy_args,
    kube_proxy_config,
    kubelet_args,
    kubelet_config,
    to_json,
    traefik_args,
)
from modelops_cluster.oci_registry import LocalRegistry, hosts_toml
from modelops_support.ports import free_port
from modelops_support.process import Component
from modelops_support.waiting import wait_for

log = logging.getLogger(__name__)

COMPONENTS = ("containerd", "kubelet", "kube-proxy", "traefik", "registry")
# Debian packages the real node needs (installed by `make node-tools`), and the commands that show them.
HOST_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "conntrack": "conntrack",
    "iptables": "iptables",
    "nft": "nftables",
    "ip": "iproute2",
    "buildah": "buildah",
}
CNI_PLUGINS = Path("/usr/lib/cni")


def images_root() -> Path:
    """containerd's kept image store: imported images survive cluster restarts."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("MODELOPS_NODE_IMAGES", cache / "modelops" / "node" / "containerd"))


def registry_root() -> Path:
    """The local OCI registry's kept storage, beside containerd's store (MODELOPS_NODE_REGISTRY)."""
    default = images_root().parent / "registry"
    return Path(os.environ.get("MODELOPS_NODE_REGISTRY", default))


def missing_host_tools() -> list[str]:
    """Debian packages whose commands are missing (empty when the host can run the real node)."""
    missing = {pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None}
    if not (CNI_PLUGINS / "bridge").exists():
        missing.add("containernetworking-plugins")
    return sorted(missing)


def can_run_real_node() -> str | None:
    """None when this machine can run the real node, else why not (root, tools)."""
    if os.geteuid() != 0:
        return "the real node needs root (kubelet, containerd, network set-up)"
    missing = missing_host_tools()
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (make node-tools installs them)"
    return None


# containerd's CRI logs this as its last step before it serves (containerd 1.6 to 2.x: criService.Run,
# just before it marks itself initialized).
CRI_SERVING_LINE = b"Start streaming server"


def cri_serving(log_file: Path, offset: int) -> bool:
    """Whether containerd's log, from `offset` (where this run's lines begin), says its CRI serves."""
    try:
        with open(log_file, "rb") as log:
            log.seek(offset)
            return CRI_SERVING_LINE in log.read()
    except FileNotFoundError:
        return False


class RealNode:
    """The node's processes and host state for one LocalCluster run."""

    def __init__(
        self, layout: Layout, bin_dir: Path, tools: dict[str, Path], store: Path | None = None
    ) -> None:
        self.layout = layout
        self.bin_dir = bin_dir
        self.tools = tools  # the traefik and registry binaries
        self.network = NodeNetwork.of(layout)
        self.paths = NodePaths.under(layout.workdir / "node", store or images_root())
        self.kubelet_healthz = free_port()
        self.proxy_ports = (free_port(), free_port())
        self.ingress_port = free_port()
        self.traefik_ping_port = free_port()
        self.registry = LocalRegistry(
            host=f"{self.network.node_ip}:{free_port()}",
            debug_port=free_port(),
            workdir=self.paths.workdir / "registry",
            storage=registry_root(),
        )
        self.ledger: hostnet.Ledger | None = None
        self.containerd = Containerd(self.paths.containerd_socket, self.paths.containerd_dir)

    @property
    def node_name(self) -> str:
        return REAL_NODE_NAME

    @property
    def node_ip(self) -> str:
        """The node's address on the project's bridge: pods reach host servers bound here."""
        return self.network.node_ip

    @property
    def ingress_url(self) -> str:
        """Traefik's entry point on loopback: send requests here with the Ingress's Host header."""
        return f"http://{HOST}:{self.ingress_port}"

    def components(self, env: dict[str, str]) -> dict[str, Component]:
        logs = self.layout.log_file
        traefik_env = {**env, "KUBECONFIG": str(self.layout.component_kubeconfig("traefik"))}
        envs = {"traefik": traefik_env, "registry": {**env, **self.registry.env()}}
        argv = {
            "containerd": ["containerd", "--config", str(self.paths.containerd_config)],
            "kubelet": [str(self.bin_dir / "kubelet"), *kubelet_args(self.layout, self.paths, self.network)],
            "kube-proxy": [str(self.bin_dir / "kube-proxy"), *kube_proxy_args(self.paths)],
            "traefik": [str(self.tools["traefik"]), *traefik_args(self.ingress_port, self.traefik_ping_port)],
            "registry": [str(self.tools["registry"]), "serve", str(self.registry.config_file)],
        }
        return {name: Component(name, argv[name], logs(name), envs.get(name, env)) for name in COMPONENTS}

    def health_urls(self) -> dict[str, str]:
        return {
            "kubelet": f"http://{HOST}:{self.kubelet_healthz}/healthz",
            "kube-proxy": f"http://{HOST}:{self.proxy_ports[0]}/healthz",
            "traefik": f"http://{HOST}:{self.traefik_ping_port}/ping",
            "registry": self.registry.health_url,
        }

    def prepare(self) -> None:
        """Clear a dead run's leftovers, write the configurations, set up the host network."""
        why = can_run_real_node()
        if why:
            raise hostnet.HostSetupError(why)
        hostnet.clear_leftovers(lambda workdir: containerd_socket(workdir / "node"))
        paths, network = self.paths, self.network
        dirs = (paths.containerd_dir, paths.containerd_socket.parent, paths.cni_conf_dir, paths.cni_ipam_dir)
        for d in (*dirs, paths.kubelet_root):
            d.mkdir(parents=True, exist_ok=True)
        paths.images_root.mkdir(parents=True, exist_ok=True)
        (paths.cni_conf_dir / "10-modelops.conflist").write_text(to_json(cni_config(paths, network)))
        ca = self.layout.pki_file("ca.crt")
        paths.kubelet_config.write_text(to_json(kubelet_config(paths, network, ca, self.kubelet_healthz)))
        paths.kube_proxy_config.write_text(
            to_json(kube_proxy_config(self.layout, paths, network, self.proxy_ports))
        )
        hosts = paths.registry_hosts_dir / self.registry.host
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(hosts_toml(self.registry.host))
        self.registry.write()
        self.ledger = hostnet.Ledger(str(self.layout.workdir), str(paths.images_root))
        hostnet.set_up(network, self.ledger)

    def scrub_store(self) -> None:
        """Remove a previous run's containers from the kept store (images stay), with the CRI plugin off."""
        config = self.paths.containerd_dir / "scrub.toml"
        config.write_text(containerd_config(self.paths, cri=False))
        scrub = Component(
            "containerd-scrub",
            ["containerd", "--config", str(config)],
            self.layout.log_file("containerd-scrub"),
        )
        scrub.start()
        try:
            self._wait_socket(scrub, 30)
            containers = self.containerd.ctr("containers", "ls", "-q").split()
            for container in containers:
                self.containerd.ctr("tasks", "rm", "-f", container, timeout=30, check=False)  # often none
                self.containerd.ctr("containers", "rm", container)
            if containers:
                log.info(
                    "removed %d containers a previous run left in %s", len(containers), self.paths.images_root
                )
        finally:
            scrub.stop()
            self.paths.containerd_socket.unlink(missing_ok=True)

    def start_runtime(self, containerd: Component) -> None:
        """containerd with the CRI plugin, and the pause image in its store."""
        self.scrub_store()
        self.paths.containerd_config.write_text(containerd_config(self.paths))
        appended = containerd.append and containerd.log_file.exists()  # else the start truncates the log
        log_start = containerd.log_file.stat().st_size if appended else 0  # where this run's lines begin
        containerd.start()
        self._wait_socket(containerd, 60, log_start)
        if self.containerd.ensure_pause(self.bin_dir / "modelops-pause", PAUSE_IMAGE):
            log.info("pause image imported into %s", self.paths.images_root)

    def _wait_socket(self, component: Component, timeout: float, cri_log_from: int | None = None) -> None:
        """Until containerd answers on its socket and, with `cri_log_from` (where this run's lines begin in
        its log), its CRI serves: the CRI finishes starting after the socket answers (recovering what a
        previous run left can take half a second), and a kubelet that asks before gets 'server is not
        initialized yet' and exits."""

        def answers() -> bool:
            component.check_running()
            if not self.paths.containerd_socket.exists():
                return False
            self.containerd.ctr("version", timeout=5)
            return cri_log_from is None or cri_serving(component.log_file, cri_log_from)

        # ImageError or a time-out from ctr: not answering yet.
        ignore = (ImageError, subprocess.TimeoutExpired)
        wait_for(answers, timeout, 0.1, f"containerd on {self.paths.containerd_socket}", ignore=ignore)

    def import_image(self, buildah_ref: str, ref: str) -> bool:
        """Make a locally built image available to pods as `ref`; True when it had to be imported."""
        return self.containerd.ensure_buildah_image(buildah_ref, ref)

    def tear_down(self) -> None:
        """Undo the host changes (after the components were stopped): idempotent."""
        ledger = self.ledger or hostnet.Ledger.load()
        if ledger is not None:
            hostnet.tear_down(ledger, self.paths.containerd_socket)
        self.ledger = None

    def describe(self) -> dict[str, str]:
        return {
            "node": REAL_NODE_NAME,
            "nodeIP": self.node_ip,
            "ingress": self.ingress_url,
            "images": str(self.paths.images_root),
            "registry": self.registry.host,
        }

    def __repr__(self) -> str:
        return f"RealNode({json.dumps(self.describe())})"
