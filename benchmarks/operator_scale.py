"""Operator at scale: N ModelDeployments applied at once, time until all are Ready; API writes at rest; RSS.

    .venv/bin/python benchmarks/operator_scale.py [--count 200] [--rest-seconds 300] [--json out.json]

Starts the project's local control plane (or uses $KUBECONFIG with MODELOPS_USE_KUBECONFIG=1), a real
MLflow server with three registered models (metadata only: the operator never loads them), installs the CRD,
runs `kopf run -m modelops_operator.handlers` as a subprocess, applies N resources in one `kubectl apply`,
and polls until every one is Ready for its generation. Then it diffs kube-apiserver's
apiserver_request_total for write verbs by resource over the rest window (node and lease heartbeats of kwok
and of leader election are reported apart) and reads the operator's RSS from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelops_cluster import choose_cluster, wait_for
from modelops_operator.crd import CRD_NAME, GROUP, PLURAL, VERSION, render_crd
from modelops_support.kubectl import kubectl
from modelops_support.local_operator import LocalOperator
from modelops_support.mlflow_server import LocalMlflowServer
from modelops_support.ports import free_port
from modelops_support.waiting import observe

REPO = Path(__file__).resolve().parents[1]
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"}
HEARTBEAT_RESOURCES = {"nodes", "leases"}
NAMES = {"predictor": "wine_quality", "drift": "wine_quality_drift", "outlier": "wine_quality_outliers"}
METRIC_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")


def seed_registry(tracking_uri: str) -> None:
    """Register version 1 of the three models from one run (metadata only)."""
    from mlflow import MlflowClient

    registry = MlflowClient(tracking_uri)
    experiment = registry.create_experiment("operator-scale")
    run = registry.create_run(experiment)
    tags = {"modelops.training_run_id": run.info.run_id}
    for name in NAMES.values():
        registry.create_registered_model(name)
        registry.create_model_version(
            name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
        )


def manifests(count: int, tracking_uri: str) -> str:
    """N ModelDeployments from the staging sample, without registry write-back (Ready is what is timed)."""
    sample = yaml.safe_load((REPO / "examples" / "wine-quality-staging.yaml").read_text())
    docs = []
    for i in range(count):
        doc = json.loads(json.dumps(sample))
        doc["metadata"]["name"] = f"wine-{i:03d}"
        spec = doc["spec"]
        spec["registry"]["trackingUri"] = tracking_uri
        spec["models"] = {role: {"name": name, "version": "1"} for role, name in NAMES.items()}
        spec["ingress"]["host"] = f"wine-{i:03d}.modelops.local"
        # Small requests: the fake node's 32 CPUs would otherwise cap the pods at 128 (default 250m each).
        spec["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
        spec.pop("stage")
        spec.pop("promotion")
        docs.append(doc)
    return yaml.safe_dump_all(docs)


def write_counts(api: client.ApiClient) -> Counter[str]:
    """apiserver_request_total summed by resource, write verbs only."""
    _method, url, headers, _body, _post = api.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    response = api.call_api("GET", url, header_params=headers)
    response.read()
    counts: Counter[str] = Counter()
    for line in response.data.decode().splitlines():
        match = METRIC_LINE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb", "").upper() in WRITE_VERBS:
            resource = labels.get("resource", "") + (
                f"/{labels['subresource']}" if labels.get("subresource") else ""
            )
            counts[resource] += int(float(match["value"]))
    return counts


def drift_states(api: client.ApiClient, namespace: str) -> dict[str, int]:
    """How many ModelDeployments have each status.drift state ("-" when not written yet)."""
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
        "items"
    ]
    return dict(Counter(((obj.get("status") or {}).get("drift") or {}).get("state", "-") for obj in items))


def ready_count(api: client.ApiClient, namespace: str) -> int:
    """How many ModelDeployments are Ready for their current generation."""
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
        "items"
    ]
    ready = 0
    for obj in items:
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready" and c["status"] == "True":
                ready += c.get("observedGeneration") == obj["metadata"]["generation"]
    return ready


def rss_mb(pid: int) -> dict[str, float]:
    """Current and peak resident memory of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(count: int, rest_seconds: float, ready_timeout: float, workdir: Path) -> dict[str, Any]:
    """The whole benchmark; returns the figures."""
    figures: dict[str, Any] = {"count": count, "rest_seconds": rest_seconds, "cpus": os.cpu_count()}
    figures["load_average_at_start"] = os.getloadavg()
    cluster = choose_cluster(workdir / "cluster")
    mlflow = LocalMlflowServer(workdir / "mlflow", port=free_port())
    operator: LocalOperator | None = None
    cluster.start()
    mlflow.start()
    try:
        seed_registry(mlflow.tracking_uri)
        kubeconfig = cluster.kubeconfig
        kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=render_crd())
        kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
        namespace = f"scale-{int(time.time())}"
        kubectl(kubeconfig, "create", "namespace", namespace)
        operator = LocalOperator(kubeconfig, workdir / "operator.log", namespaces=[namespace]).start()
        figures["rss_idle_mb"] = rss_mb(operator.pid)["VmRSS"]

        with cluster.api_client() as api:
            start = time.monotonic()
            kubectl(
                kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=manifests(count, mlflow.tracking_uri)
            )
            figures["apply_s"] = round(time.monotonic() - start, 2)
            progress: list[tuple[float, int]] = []

            def all_ready() -> bool:
                n = ready_count(api, namespace)
                progress.append((round(time.monotonic() - start, 1), n))
                return n == count

            wait_for(all_ready, ready_timeout, 0.5, f"{count} ModelDeployments Ready")
            figures["all_ready_s"] = round(time.monotonic() - start, 2)
            figures["ready_progress"] = progress[:: max(1, len(progress) // 12)] + progress[-1:]
            figures["rss_at_ready_mb"] = rss_mb(operator.pid)
            figures["operator_cpu_s_to_ready"] = round(cpu_seconds(operator.pid), 1)
            figures["load_average_at_ready"] = os.getloadavg()

            # Let the last status writes and rollout bookkeeping land, then count writes at rest.
            # A fixed settling window before the measured one, by design: the drift poll's first look (a
            # few seconds after each Ready) is part of settling.
            observe(lambda: None, 15)
            figures["drift_states_before_rest"] = drift_states(api, namespace)
            before = write_counts(api)
            observe(lambda: None, rest_seconds, 5)  # the measurement window itself
            after = write_counts(api)
            delta = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > 0}
            figures["writes_at_rest_by_resource"] = delta
            figures["writes_at_rest_excluding_heartbeats"] = sum(
                v for k, v in delta.items() if k.split("/")[0] not in HEARTBEAT_RESOURCES
            )
            figures["rss_after_rest_mb"] = rss_mb(operator.pid)
            figures["operator_cpu_s_at_rest"] = round(
                cpu_seconds(operator.pid) - figures["operator_cpu_s_to_ready"], 1
            )
            figures["operator_alive"] = operator.alive()
        return figures
    finally:
        if operator is not None:
            operator.stop()
        mlflow.stop()
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rest-seconds", type=float, default=300.0)
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="operator-scale-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures = run(args.count, args.rest_seconds, args.ready_timeout, workdir)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = (
        figures["all_ready_s"] <= 60
        and figures["writes_at_rest_excluding_heartbeats"] == 0
        and figures["rss_at_ready_mb"]["VmRSS"] <= 200
    )
    print("goals met" if ok else "goals NOT met", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
