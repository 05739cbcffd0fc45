"""`make demo-promotion`: the staged promotion of docs/promotion.md, end to end on this machine.

train and register three times (versions A, B, C of the three models) -> local cluster (kwok: the pods
are simulated) with the CRD, the operator and a real Argo CD watching a Git repository on loopback, both
environments on A -> staging soaks A and records it; production, gated, waits for that record and then
turns Healthy by itself -> B committed to staging, soaked, recorded -> `modelops promote` writes the
production commit, the "reviewer" merges it, production ships B -> C committed straight to production
(skipping staging) is held back by the gate while the pods keep B -> staging verifies C, production rolls
out by itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

SOAK_SECONDS = 15


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def wait(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    from modelops_cluster import wait_for

    started = time.monotonic()
    found = wait_for(check, timeout, 0.5, what)
    print(f"  {what}: {time.monotonic() - started:.0f} s", flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops-demo-promotion", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="hyperparameter search trials (default 4)")
    parser.add_argument("--data-dir", type=Path, help="local copy of the UCI CSVs (default: download)")
    parser.add_argument("--state-dir", type=Path, help="where the demo keeps its state (default .modelops)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from mlflow import MlflowClient

    from modelops_cluster import LocalCluster
    from modelops_demo.steps import install_crd, kubectl, train
    from modelops_support.gitops import DeployRepo, git, start_applications, verification_record
    from modelops_support.local_argocd import LocalArgoCD, LocalGitServer
    from modelops_support.local_operator import LocalOperator
    from modelops_support.mlflow_server import LocalMlflowServer
    from modelops_training.state import state_dir

    state = (args.state_dir or state_dir()).resolve() / "promotion"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    names = {"staging": "wine-quality-staging", "production": "wine-quality-production"}
    namespaces = {"staging": "wine-staging", "production": "wine-production"}
    with ExitStack() as stack:
        banner("1/5 MLflow, and three trainings: versions A, B and C of the three models")
        mlflow = stack.enter_context(LocalMlflowServer(state / "mlflow"))
        a, b, c = (
            {
                role: str(m["version"])
                for role, m in train(mlflow.tracking_uri, args.data_dir, args.trials, state)["models"].items()
            }
            for _ in range(3)
        )
        registry = MlflowClient(mlflow.tracking_uri)

        banner("2/5 Cluster (kwok), CRD, operator, Git on loopback, Argo CD")
        cluster = stack.enter_context(LocalCluster(state / "cluster"))
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        install_crd(cluster.kubeconfig)
        env = {
            "MODELOPS_VERIFICATION_CHECK_SECONDS": "2",
            "MODELOPS_GATE_POLL_SECONDS": "3",
            "MODELOPS_CLUSTER_NAME": "local",
            # The operator's policy: only the staging namespace records staging, after the demo's soak.
            "MODELOPS_VERIFICATION_NAMESPACES": f"staging={namespaces['staging']}",
            "MODELOPS_VERIFICATION_MIN_SOAK_SECONDS": str(SOAK_SECONDS),
        }
        stack.enter_context(LocalOperator(cluster.kubeconfig, state / "operator.log", env=env))
        server = stack.enter_context(LocalGitServer(state / "git", state / "git-daemon.log"))
        argo = stack.enter_context(LocalArgoCD(cluster.kubeconfig, state / "argocd"))
        repo = DeployRepo.create(server, "deploy", state / "deploy", mlflow.tracking_uri, SOAK_SECONDS)
        print(f"deploy repository {repo.url}, working clone {repo.clone}")
        start_applications(argo, repo, names, namespaces)

        def health(env_name: str) -> tuple[str, str, str]:
            return argo.health(names[env_name])

        def recorded(versions: dict[str, str]) -> Any:
            return verification_record(registry.get_model_version("wine_quality", versions["predictor"]).tags)

        def served(versions: dict[str, str]) -> bool:
            resource = json.loads(
                kubectl(
                    cluster.kubeconfig,
                    "get",
                    "mdep",
                    "wine-quality",
                    "-n",
                    namespaces["production"],
                    "-o",
                    "json",
                )
            )
            return ((resource.get("status") or {}).get("models") or {}).get("predictor", {}).get(
                "version"
            ) == versions["predictor"]

        def show() -> None:
            for env_name in ("staging", "production"):
                print(kubectl(cluster.kubeconfig, "get", "mdep", "-n", namespaces[env_name]).rstrip())
                print(f"  Argo CD {names[env_name]}: {health(env_name)}")

        banner(f"3/5 Both environments start on A; staging soaks it ({SOAK_SECONDS} s), production waits")
        wait("staging Healthy in Argo CD", lambda: health("staging")[0] == "Healthy")
        print(f"  production meanwhile: {health('production')}")
        record = wait("staging's record of A", lambda: recorded(a))
        print(f"  modelops.verified.staging on wine_quality/{a['predictor']}: {record}")
        wait("production Healthy on A, by itself", lambda: health("production")[0] == "Healthy")
        show()

        banner("4/5 B into staging; modelops promote --from staging --commit; the reviewer merges")
        repo.pin("staging", b, f"Staging: wine_quality {b['predictor']}")
        wait("staging's record of B", lambda: recorded(b))
        promoted = repo.promote("staging", mlflow.tracking_uri)
        promoted.check_returncode()
        print(promoted.stdout + promoted.stderr)
        branch = git(repo.clone, "rev-parse", "--abbrev-ref", "HEAD").strip()
        repo.merge(branch)
        wait("production on B", lambda: served(b) and health("production")[0] == "Healthy")
        stage = registry.get_model_version("wine_quality", b["predictor"]).current_stage
        print(f"  registry: wine_quality/{b['predictor']} is in stage {stage}")

        banner("5/5 C committed straight to production: the gate holds it until staging verifies it")
        repo.pin("production", c, f"Production: wine_quality {c['predictor']} (skipping staging)")
        wait(
            "production Progressing (AwaitingVerification)",
            lambda: "AwaitingVerification" in health("production")[1],
        )
        show()
        repo.pin("staging", c, f"Staging: wine_quality {c['predictor']}")
        wait("staging's record of C", lambda: recorded(c))
        wait("production on C, by itself", lambda: served(c) and health("production")[0] == "Healthy")
        show()
        banner("done: stopping Argo CD, Git, the operator, the cluster and MLflow")
    return 0


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
