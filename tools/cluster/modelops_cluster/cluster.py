"""A local control plane (etcd, kube-apiserver, controller-manager, scheduler) with a kwok node or a real
node (containerd, kubelet, kube-proxy, Traefik: realnode.py), or an existing cluster."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from modelops_cluster import flags
from modelops_cluster.binaries import find_binaries, find_tool, gateway_api_crds, traefik_crds
from modelops_cluster.credentials import write_credentials
from modelops_cluster.health import client_context, insecure_context, probe
from modelops_cluster.layout import Layout, pick_ports
from modelops_cluster.node import build_fake_node, is_node_ready
from modelops_cluster.nodeconfig import REAL_NODE_NAME, gateway_objects
from modelops_cluster.realnode import RealNode
from modelops_support.kubectl import kubectl
from modelops_support.lifecycle import Managed
from modelops_support.process import Component
from modelops_support.waiting import wait_for

log = logging.getLogger(__name__)

# Errors that mean "the API server is not answering (yet)", as opposed to a bug.
_API_UNAVAILABLE = (ApiException, HTTPError, ConnectionError, OSError)


class Cluster(Protocol):
    """What tests and the demo need from a cluster, local or existing."""

    @property
    def kubeconfig(self) -> Path: ...

    def start(self) -> Cluster: ...

    def stop(self) -> None: ...

    def api_client(self) -> client.ApiClient: ...


class ClusterStartError(RuntimeError):
    """The control plane did not become ready; the message names the component and ends with its log."""


def new_api_client(kubeconfig: Path) -> client.ApiClient:
    """A kubernetes ApiClient for the kubeconfig's current context (the caller closes it)."""
    return config.new_client_from_config(config_file=str(kubeconfig))


NodeKind = Literal["kwok", "real"]
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class LocalCluster(Managed):
    """The project's own control plane under `workdir`, on loopback ports chosen at start.

    `node="kwok"`: one fake Node that kwok keeps Ready (pods run nothing; hundreds fit). `node="real"`:
    a real kubelet with containerd on the project's bridge, kube-proxy and Traefik (pods run; needs root
    and the Debian packages of `make node-tools`). Each start is a fresh cluster (the etcd data of a
    previous run in the same workdir is removed); the logs stay in `workdir/logs` after stop.
    """

    def __init__(
        self,
        workdir: Path | str,
        bin_dir: Path | None = None,
        timeout: float = 120.0,
        node: NodeKind = "kwok",
    ):
        self.workdir = Path(workdir).resolve()
        self.bin_dir = bin_dir
        self.timeout = timeout
        self.node_kind: NodeKind = node
        self.layout: Layout | None = None
        self.components: dict[str, Component] = {}
        self.node: RealNode | None = None
        self._traefik_crds: list[Path] = []
        self.started_in: float | None = None  # seconds from start() to ready

    @property
    def COMPONENTS(self) -> tuple[str, ...]:
        if self.node_kind == "real":
            return (*CONTROL_PLANE, "containerd", "kubelet", "kube-proxy", "traefik", "registry")
        return (*CONTROL_PLANE, "kwok")

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def api_client(self) -> client.ApiClient:
        return new_api_client(self.kubeconfig)

    def pids(self) -> dict[str, int]:
        """The process id of each running component."""
        return {n: c.pid for n, c in self.components.items() if c.pid is not None and c.is_running()}

    def start(self) -> LocalCluster:
        """Start every component and return when the fake Node is Ready, or raise ClusterStartError."""
        if self.pids():
            raise RuntimeError(f"{self.workdir} already runs {sorted(self.pids())}: stop() it first")
        t0 = time.monotonic()
        real = self.node_kind == "real"
        bin_dir = self.bin_dir or find_binaries(node=real)
        tools = {name: find_tool(name) for name in ("traefik", "registry")} if real else {}
        self._traefik_crds = [traefik_crds(), *gateway_api_crds()] if real else []
        self._reset_workdir()
        layout = Layout(self.workdir, pick_ports())
        if real:
            layout = Layout(self.workdir, layout.ports, node_name=REAL_NODE_NAME)
        self.layout = layout
        write_credentials(layout)
        stages = resources.files("modelops_cluster").joinpath("kwok-stages.yaml").read_bytes()
        layout.kwok_config.write_bytes(stages)

        argv = {
            "etcd": flags.etcd_args(layout),
            "kube-apiserver": flags.apiserver_args(layout),
            "kube-controller-manager": flags.controller_manager_args(layout),
            "kube-scheduler": flags.scheduler_args(layout),
            "kwok": flags.kwok_args(layout),
        }
        # kwok reads ~/.kwok/kwok.yaml too when it exists; point HOME at the workdir so only our stages count.
        env = {**os.environ, "HOME": str(self.workdir)}
        self.components = {
            name: Component(name, [str(bin_dir / name), *argv[name]], layout.log_file(name), env)
            for name in self.COMPONENTS
            if name in argv
        }
        if real:
            self.node = RealNode(layout, bin_dir, tools)
            self.components.update(self.node.components(env))
        atexit.register(self.stop)
        try:
            if self.node is not None:
                self.node.prepare()
            self._start_in_order(layout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        log.info("control plane ready in %.1f s: %s", self.started_in, self.kubeconfig)
        return self

    def stop(self) -> None:
        """Stop the components in reverse order (SIGTERM, then SIGKILL after a deadline); idempotent."""
        atexit.unregister(self.stop)
        for name in reversed(self.COMPONENTS):
            component = self.components.get(name)
            if component is not None:
                component.stop()
        if self.node is not None:
            self.node.tear_down()  # the pods' processes, mounts, bridge, guard, sysctls

    def _reset_workdir(self) -> None:
        for sub in ("etcd", "pki", "certs", "kubeconfigs", "logs", "node"):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _start_in_order(self, layout: Layout) -> None:
        urls = flags.health_urls(layout)
        deadline = time.monotonic() + self.timeout
        pki = layout.pki_file
        contexts = {
            "kube-apiserver": client_context(
                str(pki("ca.crt")), str(pki("admin.crt")), str(pki("admin.key"))
            ),
            "kube-controller-manager": insecure_context(),
            "kube-scheduler": insecure_context(),
        }

        def await_healthy(name: str) -> None:
            component = self.components[name]

            def healthy() -> bool:
                component.check_running()
                return probe(urls[name], contexts.get(name))

            self._wait(healthy, deadline, f"{name} at {urls[name]}", name)

        self.components["etcd"].start()
        await_healthy("etcd")
        self.components["kube-apiserver"].start()
        await_healthy("kube-apiserver")
        if self._traefik_crds:  # before Traefik starts: its CRD and Gateway providers watch them
            files = [arg for path in self._traefik_crds for arg in ("-f", str(path))]
            kubectl(self.kubeconfig, "apply", "--server-side", *files)
        node_components = ("kwok",) if self.node is None else ("kubelet", "kube-proxy", "traefik", "registry")
        for name in ("kube-controller-manager", "kube-scheduler"):
            self.components[name].start()
        if self.node is not None:
            self.node.start_runtime(self.components["containerd"])
            urls.update(self.node.health_urls())
        for name in node_components:
            self.components[name].start()

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            if self.node is None:
                node: Any = build_fake_node(layout.node_name)  # the client sends a dict body as it is
                core.create_node(node)
            for name in ("kube-controller-manager", "kube-scheduler", *node_components):
                await_healthy(name)

            def node_ready() -> bool:
                self._check_all_running()
                node = api.sanitize_for_serialization(core.read_node(layout.node_name))
                return is_node_ready(node)

            suspect = "kwok" if self.node is None else "kubelet"
            self._wait(node_ready, deadline, f"Node {layout.node_name} Ready", suspect)

            def default_service_account() -> bool:
                # Created by the controller-manager's serviceaccount controller; Pods need it to be admitted.
                self._check_all_running()
                core.read_namespaced_service_account("default", "default")
                return True

            self._wait(
                default_service_account, deadline, "ServiceAccount default/default", "kube-controller-manager"
            )
        if self.node is not None:  # the Gateway HTTPRoutes attach to, on Traefik's entry point
            gateway = "\n---\n".join(json.dumps(o) for o in gateway_objects(self.node.ingress_port))
            kubectl(self.kubeconfig, "apply", "--server-side", "-f", "-", stdin=gateway)

    def _check_all_running(self) -> None:
        for component in self.components.values():
            component.check_running()

    def _wait(self, predicate: Callable[[], bool], deadline: float, what: str, suspect: str) -> None:
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            wait_for(predicate, remaining, 0.2, what, ignore=_API_UNAVAILABLE)
        except TimeoutError as e:
            tail = self.components[suspect].log_tail()
            raise ClusterStartError(f"{e}; last lines of {self.components[suspect].log_file}:\n{tail}") from e
        except RuntimeError as e:
            raise ClusterStartError(str(e)) from e


class ExistingCluster:
    """A cluster someone else runs (kind, k3d, AKS) reached through a kubeconfig; stop() leaves it be."""

    def __init__(self, kubeconfig: Path | str, timeout: float = 30.0):
        self._kubeconfig = Path(kubeconfig)
        self.timeout = timeout

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def api_client(self) -> client.ApiClient:
        return new_api_client(self._kubeconfig)

    def start(self) -> ExistingCluster:
        """Check that the cluster answers, within the timeout."""
        with self.api_client() as api:
            version = client.VersionApi(api)
            wait_for(
                version.get_code, self.timeout, 1.0, f"the API server of {self._kubeconfig}", _API_UNAVAILABLE
            )
        return self

    def stop(self) -> None:
        """Nothing to stop: the cluster is not ours."""

    def __enter__(self) -> ExistingCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def uses_existing_cluster() -> bool:
    """Whether the user asked for $KUBECONFIG (MODELOPS_USE_KUBECONFIG=1 with KUBECONFIG set)."""
    return os.environ.get("MODELOPS_USE_KUBECONFIG") == "1" and bool(os.environ.get("KUBECONFIG"))


def choose_cluster(workdir: Path | str) -> LocalCluster | ExistingCluster:
    """The cluster named by $KUBECONFIG when MODELOPS_USE_KUBECONFIG=1, else a LocalCluster in `workdir`."""
    if uses_existing_cluster():
        first = os.environ["KUBECONFIG"].split(os.pathsep)[0]
        return ExistingCluster(first)
    return LocalCluster(workdir)
