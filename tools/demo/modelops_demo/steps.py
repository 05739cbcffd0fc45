"""The demo's steps, each a small function over the real parts (MLflow, bentoml serve, kubectl, kopf)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from modelops_contract import ROLES
from modelops_support.kubectl import kubectl

READY_TIMEOUT_S = 300.0
IMAGE_BUILD = Path(__file__).resolve().parents[3] / "tools" / "image" / "build.sh"


def train(tracking_uri: str, data_dir: Path | None, trials: int, state: Path) -> dict[str, Any]:
    """Train and register the three models; print the summary; return the registered record."""
    from modelops_training.quiet import quiet_third_party_output

    quiet_third_party_output()
    from modelops_training.pipeline import train_and_register
    from modelops_training.registration import format_summary

    registered = train_and_register(
        tracking_uri=tracking_uri,
        data_dir=data_dir,
        trials=trials,
        output=state / "registered_models.json",
        progress=True,
    )
    print(format_summary(registered))
    return registered.to_record()


def build_service_image() -> str:
    """The root Dockerfile's service image, built with buildah (its layer cache makes a rebuild quick)."""
    done = subprocess.run([str(IMAGE_BUILD), "service"], stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.split()[0]


def predict(url: str, records: list[dict[str, Any]], host: str | None = None) -> Any:
    """POST records to /predict (with the Ingress's Host header when given); the decoded response."""
    body = json.dumps(records).encode()
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
    request = urllib.request.Request(f"{url}/predict", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def call_service(url: str, host: str | None = None) -> Any:
    """POST the proof-of-concept request to /predict and return the decoded response."""
    from modelops_service.schema import example_request

    return predict(url, example_request(), host)


def drifted_records(
    data_dir: Path | None, rows: int, feature: str, by: float, seed: int = 7
) -> list[dict[str, Any]]:
    """Real wine rows with one feature moved by a constant (what a changed vineyard would send)."""
    from modelops_training.data import load_wine

    frame = load_wine(data_dir).X.sample(rows, random_state=seed)
    frame[feature] = frame[feature] + by
    return [
        {k: (int(v) if k == "is_red" else float(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def wait_drift_state(kubeconfig: Path, namespace: str, name: str, state: str, timeout: float = 60.0) -> None:
    """Poll until status.drift.state is `state`."""
    from modelops_cluster import wait_for

    def reached() -> bool:
        out = kubectl(kubeconfig, "get", "modeldeployment", name, "-n", namespace, "-o", "json")
        return bool(((json.loads(out).get("status") or {}).get("drift") or {}).get("state") == state)

    wait_for(reached, timeout, 1.0, f"status.drift.state={state} on {namespace}/{name}")


def install_crd(kubeconfig: Path) -> None:
    """Server-side apply the generated CRD and wait until it is Established."""
    from modelops_operator.crd import CRD_NAME, render_crd

    kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=render_crd())
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    print(f"CRD {CRD_NAME} established")


def pin_sample(
    sample: dict[str, Any],
    tracking_uri: str,
    registered: dict[str, Any],
    image: str | None = None,
    pull_secret: str | None = None,
) -> dict[str, Any]:
    """The sample pointed at the demo's registry, the versions just registered and the local image."""
    spec = sample["spec"]
    spec["registry"]["trackingUri"] = tracking_uri
    if image:
        spec["image"] = {"reference": image, "pullPolicy": "IfNotPresent"}
        if pull_secret:
            spec["image"]["pullSecrets"] = [{"name": pull_secret}]
    for role in ROLES:
        ref = registered["models"][role]
        spec["models"][role] = {"name": ref["name"], "version": str(ref["version"])}
    return sample


def apply_sample(
    kubeconfig: Path,
    sample_path: Path,
    namespace: str,
    tracking_uri: str,
    registered: dict[str, Any],
    image: str | None = None,
    pull_secret: str | None = None,
) -> tuple[str, str | None]:
    """kubectl apply the sample (pinned to this registry and these versions); its name and Ingress host."""
    sample = pin_sample(yaml.safe_load(sample_path.read_text()), tracking_uri, registered, image, pull_secret)
    print(kubectl(kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(sample)).strip())
    return str(sample["metadata"]["name"]), (sample["spec"].get("ingress") or {}).get("host")


def sample_service_name(sample_path: Path) -> str:
    """The name the sample's pods log under (serving.serviceName, else the service's default)."""
    from modelops_contract import DEFAULTS

    serving = yaml.safe_load(sample_path.read_text())["spec"].get("serving") or {}
    return str(serving.get("serviceName", DEFAULTS.service_name))


def ready_condition(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The Ready condition of a ModelDeployment for its current generation, if reported."""
    status = resource.get("status") or {}
    if status.get("observedGeneration") != resource["metadata"].get("generation"):
        return None
    return next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)


def wait_ready(kubeconfig: Path, namespace: str, name: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll the resource until Ready=True; show each new Ready message on the way."""
    from modelops_cluster import wait_for

    seen: list[str] = []

    def is_ready() -> bool:
        out = kubectl(kubeconfig, "get", "modeldeployment", name, "-n", namespace, "-o", "json")
        ready = ready_condition(json.loads(out))
        if ready is None:
            return False
        line = f"Ready={ready['status']} {ready.get('reason', '')}: {ready.get('message', '')}"
        if not seen or seen[-1] != line:
            seen.append(line)
            print(f"  {line}", flush=True)
        return bool(ready["status"] == "True")

    wait_for(is_ready, timeout, 1.0, f"ModelDeployment {namespace}/{name} Ready")


def registry_report(tracking_uri: str, registered: dict[str, Any]) -> str:
    """What the registry says of the deployed versions: stage, aliases and modelops tags."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    lines = ["", "MLflow registry after the rollout:"]
    for role in ROLES:
        ref = registered["models"][role]
        version = client.get_model_version(ref["name"], str(ref["version"]))
        aliases = ", ".join(version.aliases) or "-"
        tags = {k: v for k, v in version.tags.items() if k.startswith("modelops.")}
        lines.append(f"  {ref['name']} v{version.version}: stage={version.current_stage} aliases={aliases}")
        lines.extend(f"      {key} = {value}" for key, value in sorted(tags.items()))
    return "\n".join(lines)


def drift_chart(log_text: str, service_name: str, chart: Path) -> None:
    """The drift-over-time command on the service's log: its summary, and the time chart as a PNG."""
    from modelops_drift.cli import main as drift_main

    log_file = chart.with_suffix(".log")
    log_file.write_text(log_text, encoding="utf-8")
    print(f"$ python -m modelops_drift --log-file {log_file} --service-name {service_name} --plot {chart}")
    drift_main(
        ["--log-file", str(log_file), "--service-name", service_name, "--plot", str(chart)], stderr=sys.stdout
    )
