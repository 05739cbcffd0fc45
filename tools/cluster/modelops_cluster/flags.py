"""Command lines of the control-plane components: pure functions of a Layout."""

from __future__ import annotations

from modelops_cluster.layout import HOST, Layout

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE = "fake"
# The lease kwok renews for each fake Node; the node-heartbeat-with-lease stage relies on it.
NODE_LEASE_SECONDS = 40
FRONT_PROXY_CLIENT = "front-proxy-client"


def etcd_args(layout: Layout) -> list[str]:
    """A single-member etcd on loopback; fsync is off because the data is thrown away (as envtest does)."""
    return [
        "--name=default",
        f"--data-dir={layout.etcd_data_dir}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={layout.etcd_peer_url}",
        f"--initial-advertise-peer-urls={layout.etcd_peer_url}",
        f"--initial-cluster=default={layout.etcd_peer_url}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(layout: Layout) -> list[str]:
    """kube-apiserver with envtest-style flags, client-certificate authentication and RBAC."""
    pki = layout.pki_file
    return [
        f"--etcd-servers={layout.etcd_url}",
        f"--cert-dir={layout.cert_dir('kube-apiserver')}",
        f"--tls-cert-file={pki('apiserver.crt')}",
        f"--tls-private-key-file={pki('apiserver.key')}",
        f"--client-ca-file={pki('ca.crt')}",
        f"--secure-port={layout.ports.apiserver}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--service-cluster-ip-range={layout.service_cluster_ip_range}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-key-file={pki('sa.pub')}",
        f"--service-account-signing-key-file={pki('sa.key')}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        # The front-proxy (request-header) CA, as kubeadm sets it: aggregated API servers work, and the
        # controller-manager and scheduler find the CA bundle they look up at start.
        f"--requestheader-client-ca-file={pki('front-proxy-ca.crt')}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki('front-proxy-client.crt')}",
        f"--proxy-client-key-file={pki('front-proxy-client.key')}",
        # Endpoints may not hold a loopback address, so the `kubernetes` Service keeps no endpoints
        # (nothing runs inside this cluster's Pods that would call it).
        "--endpoint-reconciler-type=none",
        # `kubectl logs/exec` on a real node: the API server calls its kubelet at the node's InternalIP.
        f"--kubelet-client-certificate={pki('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={pki('apiserver-kubelet-client.key')}",
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _secure_serving_args(layout: Layout, component: str, port: int) -> list[str]:
    """Loopback serving, a self-signed certificate in the workdir, authn/authz delegated to the API server."""
    kubeconfig = layout.component_kubeconfig(component)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={HOST}",
        f"--secure-port={port}",
        f"--cert-dir={layout.cert_dir(component)}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_args(layout: Layout) -> list[str]:
    """kube-controller-manager running every default controller, each with its own service account."""
    pki = layout.pki_file
    return [
        *_secure_serving_args(layout, "kube-controller-manager", layout.ports.controller_manager),
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki('sa.key')}",
        f"--root-ca-file={pki('ca.crt')}",
        f"--cluster-signing-cert-file={pki('ca.crt')}",
        f"--cluster-signing-key-file={pki('ca.key')}",
        f"--service-cluster-ip-range={layout.service_cluster_ip_range}",
    ]


def scheduler_args(layout: Layout) -> list[str]:
    """kube-scheduler with its defaults."""
    return _secure_serving_args(layout, "kube-scheduler", layout.ports.scheduler)


def kwok_args(layout: Layout) -> list[str]:
    """kwok managing only Nodes annotated kwok.x-k8s.io/node=fake, with the stages in its config file."""
    return [
        f"--kubeconfig={layout.component_kubeconfig('kwok')}",
        f"--config={layout.kwok_config}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}",
        f"--cidr={layout.pod_cidr}",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        f"--server-address={HOST}:{layout.ports.kwok}",
    ]


def health_urls(layout: Layout) -> dict[str, str]:
    """The endpoint polled for each component until it answers 200."""
    return {
        "etcd": f"{layout.etcd_url}/health",
        "kube-apiserver": f"{layout.apiserver_url}/readyz",
        "kube-controller-manager": f"https://{HOST}:{layout.ports.controller_manager}/healthz",
        "kube-scheduler": f"https://{HOST}:{layout.ports.scheduler}/readyz",
        "kwok": f"http://{HOST}:{layout.ports.kwok}/healthz",
    }
