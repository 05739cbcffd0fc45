"""`make demo`: the main job end to end on an embedded default.

train and register -> build the service image -> start the local cluster with a real node and Traefik
(or use $KUBECONFIG with MODELOPS_USE_KUBECONFIG=1) -> install the CRD -> run the operator -> apply the
staging sample -> wait for Ready -> call /predict through the Ingress, answered by the pod -> show
`kubectl get modeldeployments` and what the registry now says -> send drifted traffic through the Ingress
and watch the DRIFT column turn from what the pod itself saw.

`--kwok` (for machines that cannot run containers: no root, no containerd) keeps the fake node: its pods
run nothing, so /predict and the drift windows come from a `bentoml serve` beside the cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import yaml

from modelops_contract import DEFAULTS
from modelops_demo.steps import (
    apply_sample,
    build_service_image,
    call_service,
    drift_chart,
    drifted_records,
    install_crd,
    kubectl,
    predict,
    registry_report,
    sample_service_name,
    train,
    wait_drift_state,
    wait_ready,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32, help="hyperparameter search trials (default 32)")
    parser.add_argument("--data-dir", type=Path, help="local copy of the UCI CSVs (default: download)")
    parser.add_argument("--state-dir", type=Path, help="where the demo keeps its state (default .modelops)")
    parser.add_argument("--sample", type=Path, default=Path("examples/wine-quality-staging.yaml"))
    parser.add_argument("--namespace", default="default")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave everything running until Ctrl-C (then stop)"
    )
    parser.add_argument(
        "--kwok",
        action="store_true",
        help="fake node (no containers run): serve beside the cluster instead (no root needed)",
    )
    return parser


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def show_drift(
    kubeconfig: Path, namespace: str, name: str, url: str, data_dir: Path | None, host: str | None = None
) -> None:
    """Send real rows, then drifted rows, to the service (or the Ingress); show the DRIFT column and Event."""
    wait_drift_state(kubeconfig, namespace, name, "Collecting")
    print(kubectl(kubeconfig, "get", "modeldeployments", "-n", namespace, "-o", "wide"))
    for batch in range(10):
        predict(url, drifted_records(data_dir, 30, "alcohol", 0.0, seed=100 + batch), host)
    print("sent 300 real rows in 10 requests")
    for batch in range(10):
        records = drifted_records(data_dir, 50, "alcohol", 3.0, seed=200 + batch)
        window = predict(url, records, host)["monitoring"]["window"]
    drifted = sorted(f for f, d in (window["drift"] or {}).get("is_drift", {}).items() if d)
    print(
        f"sent 500 rows with alcohol + 3 % in 10 requests; the window ({window['rows']} rows) flags {drifted}"
    )
    wait_drift_state(kubeconfig, namespace, name, "Drift")
    print(kubectl(kubeconfig, "get", "modeldeployments", "-n", namespace, "-o", "wide"))
    print(kubectl(kubeconfig, "get", "events", "-n", namespace, "--field-selector", "reason=DriftDetected"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Imported late: --help answers without the ML stack.
    from modelops_cluster import LocalCluster, choose_cluster, uses_existing_cluster
    from modelops_support.local_operator import LocalOperator, OperatorExited
    from modelops_support.local_service import LocalService
    from modelops_support.mlflow_server import LocalMlflowServer
    from modelops_training.state import state_dir

    state = (args.state_dir or state_dir()).resolve()
    state.mkdir(parents=True, exist_ok=True)
    real = not args.kwok and not uses_existing_cluster()
    with ExitStack() as stack:
        banner("1/6 MLflow registry (local server, sqlite + local artifacts)")
        mlflow = stack.enter_context(LocalMlflowServer(state / "mlflow"))
        print(f"tracking URI {mlflow.tracking_uri}; store {state / 'mlflow'}; logs {mlflow.log_path}")

        banner(f"2/6 Train and register the wine-quality model and its detectors ({args.trials} trials)")
        registered = train(mlflow.tracking_uri, args.data_dir, args.trials, state)

        service_url, service_log = "", None
        if real:
            banner("3/6 Build the service image (root Dockerfile, buildah; cached after the first run)")
            built = build_service_image()
            print(f"{built} built")
        else:
            banner("3/6 Serve the registered models with `bentoml serve` beside the cluster")
            service = LocalService(
                registered["prediction_model_artifact_uri"],
                registered["drift_model_artifact_uri"],
                registered["outlier_model_artifact_uri"],
                tracking_uri=mlflow.tracking_uri,
                workdir=state / "service",
            )
            stack.enter_context(service)  # stopped (with its workers) when the demo ends
            service_url, service_log = service.url, service.log_path
            print(f"service ready at {service.url} (Swagger UI at {service.url}/)")
            print(json.dumps(call_service(service.url), indent=2))

        banner("4/6 Cluster, CRD and operator")
        cluster = LocalCluster(state / "cluster", node="real") if real else choose_cluster(state / "cluster")
        stack.enter_context(cluster)
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        install_crd(cluster.kubeconfig)
        env = {"MODELOPS_DRIFT_POLL_SECONDS": "2"}
        tracking_uri, image, pull_secret = mlflow.tracking_uri, None, None
        node = cluster.node if isinstance(cluster, LocalCluster) else None
        if node is not None:
            print(f"real node {node.node_name} at {node.node_ip} (bridge modelops0)")
            print(f"Traefik, the Ingress controller, at {node.ingress_url}")
            # As on a real cluster: the image pushed to a registry, the node pulls it with a pull Secret.
            started = time.monotonic()
            image = node.registry.push("service")["service"]
            print(f"{built} pushed to the cluster's registry as {image} ({time.monotonic() - started:.0f} s)")
            pull_secret = "modelops-registry"
            env["MODELOPS_INGRESS_CONTROLLER"] = "traefik"  # Traefik's retry Middleware beside the Ingress
            secret = yaml.safe_dump(node.registry.pull_secret(pull_secret))
            kubectl(cluster.kubeconfig, "apply", "-n", args.namespace, "-f", "-", stdin=secret)
            # The pods reach MLflow on the node's bridge address: the same store, served there too.
            pod_mlflow = stack.enter_context(LocalMlflowServer(state / "mlflow", host=node.node_ip))
            tracking_uri = pod_mlflow.tracking_uri
            print(f"MLflow for the pods at {tracking_uri}")
        elif isinstance(cluster, LocalCluster):  # kwok's pods run nothing: read the local service's drift
            env["MODELOPS_METRICS_URL_TEMPLATE"] = f"{service_url}/metrics"
            print(f"kwok's pods run no containers: the operator reads drift from {service_url}/metrics")
        operator = stack.enter_context(LocalOperator(cluster.kubeconfig, state / "operator.log", env=env))
        print(f"operator running (pid {operator.pid}); log {state / 'operator.log'}")

        banner(f"5/6 Apply {args.sample} and wait for Ready")
        name, host = apply_sample(
            cluster.kubeconfig, args.sample, args.namespace, tracking_uri, registered, image, pull_secret
        )
        service_name = sample_service_name(args.sample)
        started = time.monotonic()
        wait_ready(cluster.kubeconfig, args.namespace, name)
        print(f"Ready {time.monotonic() - started:.0f} s after apply")
        print(kubectl(cluster.kubeconfig, "get", "modeldeployments", "-n", args.namespace))
        print(
            kubectl(cluster.kubeconfig, "get", "deploy,svc,ingress,pods", "-n", args.namespace, "-o", "wide")
        )
        print(registry_report(mlflow.tracking_uri, registered))
        if node is not None:
            print(f"\ncurl -H 'Host: {host}' {node.ingress_url}/predict -d @example_request.json")
            print(json.dumps(call_service(node.ingress_url, host), indent=2))

        banner("6/6 Traffic with more alcohol than the training data: the DRIFT column turns")
        if node is not None:
            show_drift(cluster.kubeconfig, args.namespace, name, node.ingress_url, args.data_dir, host)
            logs = kubectl(cluster.kubeconfig, "logs", f"deploy/{name}", "-n", args.namespace, "--timestamps")
            drift_chart(logs, service_name, state / "drift.png")
        elif isinstance(cluster, LocalCluster):
            show_drift(cluster.kubeconfig, args.namespace, name, service_url, args.data_dir)
            assert service_log is not None  # the kwok path serves beside the cluster
            # That service runs under the service's default name (the sample's is for its pods).
            drift_chart(service_log.read_text(encoding="utf-8"), DEFAULTS.service_name, state / "drift.png")
        else:
            print("on your cluster each pod keeps its own window: send traffic through the Ingress and")
            print(f"watch `kubectl get mdep {name} -n {args.namespace} -o wide`")

        if args.keep_running:
            print(f"\nEverything keeps running; export KUBECONFIG={cluster.kubeconfig}. Ctrl-C stops it.")
            with suppress(KeyboardInterrupt, OperatorExited):
                while True:  # until Ctrl-C; alive() raises OperatorExited if the operator ends
                    operator.alive()
                    time.sleep(5)
        banner("done: stopping the operator, the cluster and MLflow")
    return 0


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops everything as Ctrl-C does
