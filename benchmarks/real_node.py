"""Apply-to-Ready on the real node, split into its phases, and the local cluster's host memory at rest.

    .venv/bin/python benchmarks/real_node.py [--runs 3] [--data-dir ../shared/data/wine-quality]

Starts the local cluster with the real node (root, `make node-tools`), trains the example models into a
throwaway MLflow (2 trials), serves that store on the node's bridge address, imports the service image
(timed: the first import into an empty store is the "image load" a cold node pays once), runs the operator
and applies the staging sample `--runs` times (a new version each time, so every run starts a cold pod).

Phases per run, from the API's own timestamps (1 s resolution) and the pod's log:
  schedule   apply -> PodScheduled
  container  PodScheduled -> container started (sandbox, CNI, container from the imported image)
  models     container started -> "Service ModelService initialized" (process start, 3 models from MLflow,
             detectors, worker up)
  ready      initialized -> ModelDeployment Ready (readiness probe period, status write)
Memory: RSS of every cluster process (control plane, node, Traefik), the pods (their cgroup), at rest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from modelops_cluster import LocalCluster, wait_for
from modelops_operator.crd import CRD_NAME, render_crd
from modelops_support.kubectl import kubectl
from modelops_support.local_operator import LocalOperator
from modelops_support.mlflow_server import LocalMlflowServer

REPO = Path(__file__).resolve().parents[1]
IMAGE = "modelops/modelops-service:0.1.0"


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pods_memory_kib() -> int:
    """The memory cgroup usage of everything the kubelet runs (pods and their shims are outside it)."""
    usage = Path("/sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes")
    return int(usage.read_text()) // 1024 if usage.exists() else 0


def shim_rss_kib() -> int:
    total = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"containerd-shim" in (proc / "cmdline").read_bytes():
                    total += rss_kib(int(proc.name))
            except OSError:
                continue
    return total


def one_run(
    cluster: LocalCluster, mlflow: LocalMlflowServer, namespace: str, run: int, keep: bool = False
) -> dict[str, float]:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow.tracking_uri)
    doc = yaml.safe_load((REPO / "examples" / "wine-quality-staging.yaml").read_text())
    name = f"bench-{run}"
    doc["metadata"]["name"] = name
    doc["spec"]["registry"]["trackingUri"] = mlflow.tracking_uri
    doc["spec"]["image"] = {"reference": IMAGE, "pullPolicy": "IfNotPresent"}
    doc["spec"]["ingress"]["host"] = f"{name}.modelops.test"
    del doc["spec"]["stage"], doc["spec"]["promotion"]
    for role, model in doc["spec"]["models"].items():
        base = client.get_model_version(model["name"], "1")
        source = str(base.source)  # MLflow 3: models:/m-<id> names a logged model, which the version repeats
        logged = source.removeprefix("models:/") if source.startswith("models:/m-") else None
        new = client.create_model_version(model["name"], source, run_id=base.run_id, model_id=logged)
        doc["spec"]["models"][role] = {"name": model["name"], "version": str(new.version)}
    applied = time.time()
    kubectl(cluster.kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))

    def ready() -> dict[str, Any] | None:
        obj = json.loads(kubectl(cluster.kubeconfig, "get", "mdep", name, "-n", namespace, "-o", "json"))
        conditions = (obj.get("status") or {}).get("conditions", [])
        cond: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        return obj if cond.get("status") == "True" else None

    wait_for(ready, 300, 0.2, f"{name} Ready")
    ready_at = time.time()
    pods = json.loads(
        kubectl(
            cluster.kubeconfig,
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            f"app.kubernetes.io/instance={name}",
            "-o",
            "json",
        )
    )["items"]
    pod = pods[0]
    scheduled = parse_time(
        next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")["lastTransitionTime"]
    )
    started = parse_time(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    logs = kubectl(cluster.kubeconfig, "logs", "-n", namespace, pod["metadata"]["name"], "--timestamps")
    initialized = next(
        parse_time(line.split()[0])
        for line in logs.splitlines()
        if "initialized" in line and "Service" in line
    )
    if not keep:
        kubectl(cluster.kubeconfig, "delete", "mdep", name, "-n", namespace, "--wait=true")
    return {
        "total": ready_at - applied,
        "schedule": max(scheduled - applied, 0.0),
        "container": started - scheduled,
        "models": initialized - started,
        "ready": ready_at - initialized,
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "wine-quality")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds at rest before sampling memory")
    args = parser.parse_args()

    from modelops_training.pipeline import train_and_register

    image = subprocess.run(
        [str(REPO / "tools/image/build.sh"), "service"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.split()[0]
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        work = Path(tmp)
        with LocalMlflowServer(work / "mlflow") as loopback:
            train_and_register(
                tracking_uri=loopback.tracking_uri,
                data_dir=args.data_dir,
                trials=2,
                output=work / "registered.json",
            )
        t0 = time.monotonic()
        cluster = LocalCluster(work / "cluster", node="real").start()
        started_in = time.monotonic() - t0
        try:
            assert cluster.node is not None
            kubectl(cluster.kubeconfig, "apply", "--server-side", "-f", "-", stdin=render_crd())
            kubectl(cluster.kubeconfig, "wait", "--for=condition=Established", f"crd/{CRD_NAME}")
            t0 = time.monotonic()
            imported = cluster.node.import_image(image, IMAGE)
            import_s = time.monotonic() - t0
            with (
                LocalMlflowServer(work / "mlflow", host=cluster.node.node_ip) as mlflow,
                LocalOperator(cluster.kubeconfig, work / "operator.log"),
            ):
                runs = [
                    one_run(cluster, mlflow, "default", i, keep=i == args.runs - 1) for i in range(args.runs)
                ]
                # At rest: the last run's deployment Ready and serving nothing.
                time.sleep(args.settle)
                processes = {name: rss_kib(pid) for name, pid in cluster.pids().items()}
                processes["shims"] = shim_rss_kib()
                processes["pods"] = pods_memory_kib()
        finally:
            cluster.stop()
    print(
        f"cluster with real node ready in {started_in:.1f} s; service image "
        f"{'imported' if imported else 'already in the store'} in {import_s:.1f} s"
    )
    print(f"{'phase':<10} " + " ".join(f"run {i + 1:>2}" for i in range(len(runs))) + "   median")
    for phase in ("schedule", "container", "models", "ready", "total"):
        values = [r[phase] for r in runs]
        print(
            f"{phase:<10} " + " ".join(f"{v:6.1f}" for v in values) + f"   {statistics.median(values):6.1f} s"
        )
    total = sum(processes.values())
    print(
        "RSS at rest (MiB): "
        + ", ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(processes.items()))
        + f"; sum {total / 1024:.0f}"
    )


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
