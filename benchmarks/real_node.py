"""Apply-to-Ready on the real node, split into its phases, and the local cluster's host memory at rest;
the same for images with the models baked in by the build Job, side by side in one run.

    .venv/bin/python benchmarks/real_node.py [--runs 3] [--baked-runs 3] [--data-dir DIR]

Starts the local cluster with the real node (root, `make node-tools`), trains the example models into a
throwaway MLflow (2 trials), serves that store on the node's bridge address, imports the service image
(timed: the first import into an empty store is the "image load" a cold node pays once), runs the operator
and applies the staging sample `--runs` times (a new version each time, so every run starts a cold pod).
Then `make image-push` to the cluster's registry and `--baked-runs` ModelDeployments with `image.build`
(new versions each: every run builds, and its pod pulls the new image by digest).

Phases per run, from the API's own timestamps (1 s resolution) and the pod's log:
  build      apply -> ImageReady (the build Job: download, append, push; 0 for the download path)
  schedule   ImageReady -> PodScheduled
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
    cluster: LocalCluster,
    mlflow: LocalMlflowServer,
    namespace: str,
    name: str,
    image: dict[str, Any],
    keep: bool = False,
) -> dict[str, float]:
    from mlflow import MlflowClient

    client = MlflowClient(mlflow.tracking_uri)
    doc = yaml.safe_load((REPO / "examples" / "wine-quality-staging.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["registry"]["trackingUri"] = mlflow.tracking_uri
    doc["spec"]["image"] = image
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

    image_ready_at: list[float] = []

    def ready() -> dict[str, Any] | None:
        obj = json.loads(kubectl(cluster.kubeconfig, "get", "mdep", name, "-n", namespace, "-o", "json"))
        conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        if not image_ready_at and conditions.get("ImageReady", {}).get("status") == "True":
            image_ready_at.append(time.time())
        return obj if conditions.get("Ready", {}).get("status") == "True" else None

    wait_for(ready, 600, 0.2, f"{name} Ready")
    ready_at = time.time()
    image_at = image_ready_at[0] if image_ready_at else applied
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
        "build": image_at - applied if "build" in image else 0.0,
        "schedule": max(scheduled - max(image_at, applied), 0.0),
        "container": started - scheduled,
        "models": initialized - started,
        "ready": ready_at - initialized,
    }


def push_images(registry: Any, baked_runs: int) -> dict[str, str]:
    """The service and builder images pushed to the cluster's registry; target -> reference by digest."""
    if baked_runs <= 0:
        return {}
    subprocess.run([str(REPO / "tools/image/build.sh"), "builder"], stdout=subprocess.DEVNULL, check=True)
    return dict(registry.push("service", "builder"))


def image_sizes(registry: Any, pushed: dict[str, str], built_repository: str) -> dict[str, int]:
    """Compressed sizes (config and layers) of the pushed service image and of one baked image."""
    import httpx

    accept = (
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    )
    auth = (registry.username, registry.password)
    sizes = {}
    with httpx.Client(base_url=f"http://{registry.host}", auth=auth, headers={"Accept": accept}) as http:
        service = pushed["service"].split("/", 1)[1]
        repository, digest = service.split("@")
        tags = http.get(f"/v2/{built_repository}/tags/list").json().get("tags") or []
        for label, path in (
            ("service (base)", f"/v2/{repository}/manifests/{digest}"),
            ("baked (base + models)", f"/v2/{built_repository}/manifests/{tags[0]}" if tags else ""),
        ):
            if path:
                manifest = http.get(path).json()
                layers = manifest.get("layers", [])
                sizes[label] = manifest["config"]["size"] + sum(layer["size"] for layer in layers)
    return sizes


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baked-runs", type=int, default=3, help="runs with image.build (0: none)")
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
            registry = cluster.node.registry
            env = {"MODELOPS_PLAIN_HTTP_IMAGE_REGISTRIES": registry.host}
            pushed = push_images(registry, args.baked_runs)
            if pushed:
                env["MODELOPS_BUILDER_IMAGES"] = pushed["builder"]
                secret = yaml.safe_dump(registry.pull_secret("registry"))
                kubectl(cluster.kubeconfig, "apply", "-n", "default", "-f", "-", stdin=secret)
            with (
                LocalMlflowServer(work / "mlflow", host=cluster.node.node_ip) as mlflow,
                LocalOperator(cluster.kubeconfig, work / "operator.log", env=env),
            ):
                downloaded = {"reference": IMAGE, "pullPolicy": "IfNotPresent"}
                runs = [
                    one_run(cluster, mlflow, "default", f"bench-{i}", downloaded, keep=i == args.runs - 1)
                    for i in range(args.runs)
                ]
                baked = {
                    "build": {
                        "repository": f"{registry.host}/bench/wine-quality",
                        "baseImage": pushed.get("service", ""),
                        "builderImage": pushed.get("builder", ""),
                        "pushSecret": {"name": "registry"},
                    },
                    "pullSecrets": [{"name": "registry"}],
                }
                baked_runs = [
                    one_run(cluster, mlflow, "default", f"baked-{i}", baked) for i in range(args.baked_runs)
                ]
                sizes = image_sizes(registry, pushed, "bench/wine-quality") if pushed else {}
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
    for title, rows in (
        ("models downloaded from MLflow", runs),
        ("models baked in by the build Job", baked_runs),
    ):
        if not rows:
            continue
        print(f"\n{title}")
        print(f"{'phase':<10} " + " ".join(f"run {i + 1:>2}" for i in range(len(rows))) + "   median")
        for phase in ("build", "schedule", "container", "models", "ready", "total"):
            values = [r[phase] for r in rows]
            cells = " ".join(f"{v:6.1f}" for v in values)
            print(f"{phase:<10} {cells}   {statistics.median(values):6.1f} s")
    for image_name, size in sizes.items():
        print(f"image {image_name}: {size / 1e6:.0f} MB compressed in the registry")
    total = sum(processes.values())
    print(
        "RSS at rest (MiB): "
        + ", ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(processes.items()))
        + f"; sum {total / 1024:.0f}"
    )


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
