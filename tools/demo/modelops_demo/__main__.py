"""`make demo`: the main job end to end on an embedded default.

train and register -> serve locally and call /predict -> start the local control plane (or use
$KUBECONFIG with MODELOPS_USE_KUBECONFIG=1) -> install the CRD -> run the operator -> apply the staging
sample -> wait for Ready -> show `kubectl get modeldeployments` and what the registry now says -> send
drifted traffic and watch the DRIFT column turn.

kwok's pods run no containers, so on the local control plane the operator reads the drift windows of the
service started in step 3 (MODELOPS_METRICS_URL_TEMPLATE); on a real cluster it reads the pods'.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path

from modelops_demo.steps import (
    apply_sample,
    call_service,
    drifted_records,
    install_crd,
    kubectl,
    predict,
    registry_report,
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
    return parser


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def show_drift(kubeconfig: Path, namespace: str, name: str, url: str, data_dir: Path | None) -> None:
    """Send drifted rows to the service and show the DRIFT column and the Event that follow."""
    wait_drift_state(kubeconfig, namespace, name, "Collecting")
    print(kubectl(kubeconfig, "get", "modeldeployments", "-n", namespace, "-o", "wide"))
    window = predict(url, drifted_records(data_dir, 500, "alcohol", 3.0))["monitoring"]["window"]
    drifted = sorted(f for f, d in (window["drift"] or {}).get("is_drift", {}).items() if d)
    print(f"sent 500 rows with alcohol + 3 %; the service's window ({window['rows']} rows) flags {drifted}")
    wait_drift_state(kubeconfig, namespace, name, "Drift")
    print(kubectl(kubeconfig, "get", "modeldeployments", "-n", namespace, "-o", "wide"))
    print(kubectl(kubeconfig, "get", "events", "-n", namespace, "--field-selector", "reason=DriftDetected"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Imported late: --help answers without the ML stack.
    from modelops_cluster import LocalCluster, choose_cluster
    from modelops_operator.local import LocalOperator, OperatorExited
    from modelops_service.local import LocalService
    from modelops_training.registry_server import LocalMlflowServer
    from modelops_training.state import state_dir

    state = (args.state_dir or state_dir()).resolve()
    state.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        banner("1/6 MLflow registry (local server, sqlite + local artifacts)")
        mlflow = stack.enter_context(LocalMlflowServer(state / "mlflow"))
        print(f"tracking URI {mlflow.tracking_uri}; store {state / 'mlflow'}; logs {mlflow.log_path}")

        banner(f"2/6 Train and register the wine-quality model and its detectors ({args.trials} trials)")
        registered = train(mlflow.tracking_uri, args.data_dir, args.trials, state)

        banner("3/6 Serve the registered models with `bentoml serve` and call /predict")
        service = LocalService(
            registered["prediction_model_artifact_uri"],
            registered["drift_model_artifact_uri"],
            registered["outlier_model_artifact_uri"],
            tracking_uri=mlflow.tracking_uri,
            workdir=state / "service",
        )
        stack.enter_context(service)  # stopped (with its workers) when the demo ends
        print(f"service ready at {service.url} (Swagger UI at {service.url}/)")
        print(json.dumps(call_service(service.url), indent=2))

        banner("4/6 Control plane, CRD and operator")
        cluster = choose_cluster(state / "cluster")
        stack.enter_context(cluster)
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        install_crd(cluster.kubeconfig)
        env = {"MODELOPS_DRIFT_POLL_SECONDS": "2"}
        if isinstance(cluster, LocalCluster):  # kwok's pods run nothing: read the local service's drift
            env["MODELOPS_METRICS_URL_TEMPLATE"] = f"{service.url}/metrics"
            print(f"kwok's pods run no containers: the operator reads drift from {service.url}/metrics")
        operator = stack.enter_context(LocalOperator(cluster.kubeconfig, state / "operator.log", env=env))
        print(f"operator running (pid {operator.pid}); log {state / 'operator.log'}")

        banner(f"5/6 Apply {args.sample} and wait for Ready")
        name = apply_sample(cluster.kubeconfig, args.sample, args.namespace, mlflow.tracking_uri, registered)
        wait_ready(cluster.kubeconfig, args.namespace, name)
        print(kubectl(cluster.kubeconfig, "get", "modeldeployments", "-n", args.namespace))
        print(kubectl(cluster.kubeconfig, "get", "deploy,svc,ingress,pods", "-n", args.namespace))
        print(registry_report(mlflow.tracking_uri, registered))

        banner("6/6 Traffic with more alcohol than the training data: the DRIFT column turns")
        if isinstance(cluster, LocalCluster):
            show_drift(cluster.kubeconfig, args.namespace, name, service.url, args.data_dir)
        else:
            print("on your cluster each pod keeps its own window: send traffic through the Ingress and")
            print(f"watch `kubectl get mdep {name} -n {args.namespace} -o wide`")

        if args.keep_running:
            print(f"\nEverything keeps running; export KUBECONFIG={cluster.kubeconfig}. Ctrl-C stops it.")
            with suppress(KeyboardInterrupt, OperatorExited):
                while True:  # until Ctrl-C; alive() raises OperatorExited if the operator ends
                    operator.alive()
                    time.sleep(5)
        banner("done: stopping the operator, the control plane and MLflow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
