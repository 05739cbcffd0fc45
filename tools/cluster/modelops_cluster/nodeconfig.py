"""Configuration of the real node (containerd, CNI, kubelet, kube-proxy) and of Traefik: pure functions.

Everything is written under the cluster's working directory except containerd's image store, which lives
in a cache so that an imported image survives a restart (RealNode.images_root). The node's address sits
on the project's own bridge: the kubelet, kube-proxy's NodePorts and servers that pods must reach (MLflow)
listen there; Traefik's entry point listens on loopback only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_cluster.layout import HOST, Layout

BRIDGE = "modelops0"
PAUSE_IMAGE = "localhost/modelops-pause:1"
REAL_NODE_NAME = "modelops-node-0"
CNI_NETWORK = "modelops"
KUBELET_PORT = 10250
# Unix socket paths are limited to about 104 bytes: containerd's socket (and its .ttrpc twin) live under a
# short directory named by a hash of the node's working directory, not inside it.
SOCKET_ROOT = Path("/run/modelops")


def containerd_socket(workdir: Path) -> Path:
    """Where the containerd of the node working in `workdir` listens."""
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:12]
    return SOCKET_ROOT / f"containerd-{digest}" / "containerd.sock"


@dataclass(frozen=True)
class NodeNetwork:
    """The node's address ranges: the cluster's pod range, this node's share of it, and the Service range."""

    pod_cidr: str
    node_pod_cidr: str
    service_cidr: str

    @classmethod
    def of(cls, layout: Layout) -> NodeNetwork:
        """The first /24 of the pod range is the node's; its first address is the bridge's (the node IP)."""
        pods = ipaddress.ip_network(layout.pod_cidr)
        first = next(pods.subnets(new_prefix=24))
        return cls(str(pods), str(first), layout.service_cluster_ip_range)

    @property
    def node_ip(self) -> str:
        return str(ipaddress.ip_network(self.node_pod_cidr)[1])

    @property
    def bridge_address(self) -> str:
        """The node IP with the node's prefix length, as `ip addr` takes it."""
        return f"{self.node_ip}/{ipaddress.ip_network(self.node_pod_cidr).prefixlen}"

    @property
    def guarded(self) -> tuple[str, str]:
        """The ranges no packet may leave the machine for (nor from, for pods)."""
        return (self.pod_cidr, self.service_cidr)


@dataclass(frozen=True)
class NodePaths:
    """Where the node's components keep configuration and state, under the cluster's working directory;
    containerd's root (content, snapshots, metadata) is a cache kept across runs (`images_root`)."""

    workdir: Path
    images_root: Path
    containerd_dir: Path
    containerd_config: Path
    containerd_state: Path
    containerd_socket: Path
    runc_root: Path
    cni_conf_dir: Path
    cni_ipam_dir: Path
    kubelet_root: Path
    kubelet_config: Path
    kube_proxy_config: Path
    registry_hosts_dir: Path

    @classmethod
    def under(cls, workdir: Path, images_root: Path) -> NodePaths:
        containerd, cni = workdir / "containerd", workdir / "cni"
        return cls(
            workdir=workdir,
            images_root=images_root,
            containerd_dir=containerd,
            containerd_config=containerd / "config.toml",
            containerd_state=containerd / "state",
            containerd_socket=containerd_socket(workdir),
            runc_root=containerd / "runc",
            cni_conf_dir=cni / "net.d",
            cni_ipam_dir=cni / "ipam",
            kubelet_root=workdir / "kubelet",
            kubelet_config=workdir / "kubelet-config.yaml",
            kube_proxy_config=workdir / "kube-proxy-config.yaml",
            registry_hosts_dir=containerd / "certs.d",
        )


def containerd_config(paths: NodePaths, cni_bin_dir: str = "/usr/lib/cni", cri: bool = True) -> str:
    """containerd 1.6's config (version 2) for the kubelet on a cgroup v1 host without CAP_SYS_RESOURCE.

    `cri=False` starts containerd without its CRI plugin: used to scrub a previous run's containers from
    the kept image store before the kubelet sees them.
    """
    cri_plugin = '"io.containerd.grpc.v1.cri"'
    lines = [
        "version = 2",
        f'root = "{paths.images_root}"',
        f'state = "{paths.containerd_state}"',
        f"disabled_plugins = [{cri_plugin if not cri else ''}]",
        "[grpc]",
        f'  address = "{paths.containerd_socket}"',
        '[plugins."io.containerd.grpc.v1.cri"]',
        f'  sandbox_image = "{PAUSE_IMAGE}"',
        "  disable_apparmor = true",
        # runc cannot write oom_score_adj below the parent's without CAP_SYS_RESOURCE: keep it >= ours.
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        "  enable_unprivileged_ports = false",
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        "  SystemdCgroup = false",
        f'  Root = "{paths.runc_root}"',
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        f'  bin_dir = "{cni_bin_dir}"',
        f'  conf_dir = "{paths.cni_conf_dir}"',
        "  max_conf_num = 1",
        # Per-registry settings (hosts.toml), such as the local registry's plain HTTP (oci_registry.py).
        '[plugins."io.containerd.grpc.v1.cri".registry]',
        f'  config_path = "{paths.registry_hosts_dir}"',
    ]
    return "\n".join(lines) + "\n"


def cni_config(paths: NodePaths, network: NodeNetwork) -> dict[str, Any]:
    """A bridge network on the project's bridge with host-local addresses from the node's pod range.

    No masquerading and no default route in the pods: they get routes to the pod and Service ranges only
    (the node address is on their own link), and the guard drops anything else.
    """
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.node_pod_cidr, "gateway": network.node_ip}]],
                    "routes": [{"dst": network.pod_cidr}, {"dst": network.service_cidr}],
                    "dataDir": str(paths.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    paths: NodePaths, network: NodeNetwork, ca_file: Path, healthz_port: int
) -> dict[str, Any]:
    """KubeletConfiguration: cgroup v1 with cgroupfs, webhook authn/authz, images never garbage-collected."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": HOST,
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "resolvConf": "",
        "clusterDomain": "cluster.local",
        "podCIDR": network.node_pod_cidr,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "imageServiceEndpoint": f"unix://{paths.containerd_socket}",
        # Images come from a local import, not a registry: never delete them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "serializeImagePulls": False,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
    }


def kubelet_args(layout: Layout, paths: NodePaths, network: NodeNetwork) -> list[str]:
    """The kubelet's command line beside its configuration file."""
    return [
        f"--config={paths.kubelet_config}",
        f"--kubeconfig={layout.component_kubeconfig('kubelet')}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={layout.cert_dir('kubelet')}",
        f"--hostname-override={REAL_NODE_NAME}",
        f"--node-ip={network.node_ip}",
        "--node-labels=modelops.dev/node-kind=real",
        "--v=1",
    ]


def kube_proxy_config(
    layout: Layout, paths: NodePaths, network: NodeNetwork, ports: tuple[int, int]
) -> dict[str, Any]:
    """kube-proxy in iptables mode; NodePorts only on the node IP; conntrack sysctls left alone."""
    healthz, metrics = ports
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.component_kubeconfig("kube-proxy"))},
        "hostnameOverride": REAL_NODE_NAME,
        "bindAddress": network.node_ip,
        "clusterCIDR": network.pod_cidr,
        "healthzBindAddress": f"{HOST}:{healthz}",
        "metricsBindAddress": f"{HOST}:{metrics}",
        "nodePortAddresses": [f"{network.node_ip}/32"],
        # 0 leaves nf_conntrack_max and the TCP timeouts as the host has them (no sysctl is written).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"masqueradeAll": False, "syncPeriod": "10s", "minSyncPeriod": "0s"},
    }


def kube_proxy_args(paths: NodePaths) -> list[str]:
    return [f"--config={paths.kube_proxy_config}", "--v=1"]


def traefik_args(port: int, ping_port: int) -> list[str]:
    """Traefik as the Ingress controller, on loopback, offline; Ingress status gets the loopback address."""
    return [
        f"--entryPoints.web.address={HOST}:{port}",
        f"--entryPoints.traefik.address={HOST}:{ping_port}",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--providers.kubernetesingress=true",
        f"--providers.kubernetesingress.ingressendpoint.ip={HOST}",
        "--providers.kubernetesingress.throttleDuration=0s",
        # Its own CRDs too (the operator's retry Middleware; the cluster applies them before Traefik starts).
        "--providers.kubernetescrd=true",
        "--providers.kubernetescrd.throttleDuration=0s",
        # And the Gateway API: HTTPRoutes attached to the cluster's Gateway (gateway_objects) on this port.
        "--providers.kubernetesgateway=true",
        "--providers.kubernetesgateway.throttleDuration=0s",
        f"--providers.kubernetesgateway.statusaddress.ip={HOST}",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
        "--log.level=INFO",
        "--accesslog=false",
    ]


GATEWAY_CLASS = "traefik"
GATEWAY = ("default", "modelops")  # (namespace, name) of the Gateway HTTPRoutes attach to


def gateway_objects(port: int) -> list[dict[str, Any]]:
    """Traefik's GatewayClass and the cluster's one Gateway: an HTTP listener on Traefik's web entry point
    (a Gateway listener's port must be the entry point's), routes from every namespace."""
    namespace, name = GATEWAY
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": "traefik.io/gateway-controller"},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "web",
                        "protocol": "HTTP",
                        "port": port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


def to_json(document: dict[str, Any]) -> str:
    """A configuration as JSON (a valid YAML document too: the kubelet and kube-proxy read either)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
