"""A local Kubernetes control plane for tests and the demo: etcd, kube-apiserver, controller-manager,
scheduler and kwok built from pinned Go modules (tools/cluster/build.sh), or an existing $KUBECONFIG."""

from modelops_cluster.cluster import (
    Cluster,
    ClusterStartError,
    ExistingCluster,
    LocalCluster,
    choose_cluster,
    new_api_client,
    uses_existing_cluster,
)
from modelops_support.waiting import WaitTimeout, wait_for

__all__ = [
    "Cluster",
    "ClusterStartError",
    "ExistingCluster",
    "LocalCluster",
    "WaitTimeout",
    "choose_cluster",
    "new_api_client",
    "uses_existing_cluster",
    "wait_for",
]
