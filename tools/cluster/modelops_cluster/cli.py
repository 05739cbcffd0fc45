"""Command line: `python -m modelops_cluster up [--workdir DIR] [--node kwok|real]` and `... build`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from modelops_cluster.binaries import BinariesMissing, find_binaries
from modelops_cluster.cluster import ClusterStartError, LocalCluster, NodeKind
from modelops_cluster.hostnet import HostSetupError
from modelops_support.process import ComponentExited


def default_workdir() -> Path:
    """$MODELOPS_STATE_DIR/cluster, else .modelops/cluster in the current directory."""
    return Path(os.environ.get("MODELOPS_STATE_DIR", ".modelops")) / "cluster"


def run_up(workdir: Path, node: NodeKind = "kwok") -> int:
    """Start the control plane, print how to use it, and keep it running until SIGINT or SIGTERM."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    cluster = LocalCluster(workdir, node=node)
    try:
        cluster.start()
        print(f"control plane ready in {cluster.started_in:.1f} s; logs in {workdir.resolve() / 'logs'}")
        if cluster.node is not None:
            print(
                f"real node {cluster.node.node_name} at {cluster.node.node_ip}; "
                f"Ingress (Traefik) at {cluster.node.ingress_url}"
            )
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("Ctrl-C stops it.", file=sys.stderr, flush=True)
        while not stopping.wait(1.0):
            for component in cluster.components.values():
                component.check_running()
    except (ClusterStartError, ComponentExited, HostSetupError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    return 0


def run_build() -> int:
    """Build (or find in the cache) the binaries and print their directory."""
    try:
        print(find_binaries())
    except BinariesMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops_cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local control plane in the foreground")
    up.add_argument(
        "--workdir", type=Path, default=default_workdir(), help="state and logs (default: %(default)s)"
    )
    up.add_argument(
        "--node",
        choices=("kwok", "real"),
        default="kwok",
        help="kwok: a fake node (pods run nothing); real: kubelet + containerd + Traefik (root)",
    )
    sub.add_parser("build", help="build the binaries into the cache (tools/cluster/build.sh)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.command == "up":
        return run_up(args.workdir, args.node)
    return run_build()
