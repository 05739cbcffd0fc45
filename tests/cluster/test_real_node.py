"""The real node: the operator's pods run the service image, Traefik routes the Ingress to them, MLflow
serves the models to them, the operator reads their drift at their pod IPs. No kwok, no detours.

Traffic goes to Traefik's loopback entry point with the Ingress's Host header. Request loops are bounded
in count and time.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from modelops_cluster import LocalCluster
from modelops_cluster.nodeconfig import GATEWAY
from modelops_drift.logs import parse_line
from modelops_support.kubectl import kubectl
from modelops_support.local_operator import LocalOperator
from modelops_support.mlflow_server import LocalMlflowServer
from modelops_support.waiting import wait_for
from tests.fixtures.cluster import fresh_namespace
from tests.fixtures.data import shifted, wine_records
from tests.fixtures.operator import condition
from tests.fixtures.scenario import Scenario

pytestmark = pytest.mark.cluster

EXAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[2] / "service" / "modelops_service" / "example_request.json"
    ).read_text()
)
READY_TIMEOUT = 240.0
# A crash loop must show as Reconciling before the deadline: two OOM kills (the kubelet reports
# CrashLoopBackOff from the second), at most 45 s on a busy CI machine once; 90 s leaves twice that.
PROGRESS_DEADLINE_SECONDS = 90


def served_versions(response: httpx.Response) -> str:
    """The predictor's '<name>/<version>' a response was computed with."""
    return str(response.json()["model_versions"]["predictor"])


def test_staging_serves_predictions_through_the_ingress_from_real_pods(scenario: Scenario) -> None:
    name = "wine-staging"
    versions = scenario.new_versions()
    scenario.deploy(name, versions=versions, promote=True)
    obj = scenario.wait(name)
    assert condition(obj, "IngressReady")["reason"] == "AddressAssigned"
    assert "127.0.0.1" in condition(obj, "IngressReady")["message"]
    assert obj["status"]["url"] == f"http://{name}.modelops.test/"

    # The pod ran on the real node, on the bridge's range, and became Ready only once /readyz passed.
    (pod,) = scenario.pods(name)
    assert scenario.cluster.layout is not None
    assert pod["spec"]["nodeName"] == scenario.cluster.layout.node_name
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network("10.244.0.0/24")
    started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    pod_ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert pod_ready["status"] == "True"
    assert pod_ready["lastTransitionTime"] >= started
    assert condition(obj, "Ready")["lastTransitionTime"] >= pod_ready["lastTransitionTime"]

    with scenario.ingress(name) as http:
        answer = http.post("/predict", json=EXAMPLE)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["predictions"]) == 2
        assert body["monitoring"]["drift"]["p_value"].keys() >= {"alcohol", "pH"}
        assert body["monitoring"]["outliers"]["is_outlier"] != []
        models = obj["status"]["models"]
        assert body["model_versions"] == {role: f"{m['name']}/{m['version']}" for role, m in models.items()}
        swagger = http.get("/")
        assert swagger.status_code == 200
        assert "swagger" in swagger.text.lower()
        # A request for a host no Ingress names does not reach the pods.
        elsewhere = http.post("/predict", json=EXAMPLE, headers={"Host": "elsewhere.modelops.test"})
        assert elsewhere.status_code == 404

    # The image's digest, read from the pod once the rollout was available (as containerd names it).
    image_id = pod["status"]["containerStatuses"][0]["imageID"]
    assert image_id.split("@")[-1].startswith("sha256:")
    wait_for(
        lambda: scenario.resource(name)["status"].get("imageDigest") == image_id.split("@")[-1],
        30,
        0.5,
        "status.imageDigest from the pod",
    )

    # Written back once the rollout was available.
    predictor = scenario.trained["models"]["predictor"]["name"]
    assert scenario.registry.get_model_version_by_alias(predictor, "staging").version == versions["predictor"]

    # The pod's log satisfies the proof of concept's KQL parsing: one monitoring_metrics line per request.
    logs = kubectl(scenario.kubeconfig, "logs", "-n", scenario.namespace, pod["metadata"]["name"])
    points = [p for p in (parse_line(line, "WineQualityService") for line in logs.splitlines()) if p]
    assert points, logs[-2000:]
    assert points[-1].p_values.keys() >= {"alcohol", "pH"}


def test_a_new_version_rolls_out_under_load_without_a_failed_request(scenario: Scenario) -> None:
    first, second = scenario.new_versions(), scenario.new_versions()
    predictor = scenario.trained["models"]["predictor"]["name"]
    registry = scenario.registry
    name = "wine-rollout"
    doc = scenario.deploy(name, versions=first, promote=True)
    scenario.wait(name)
    wait_for(
        lambda: registry.get_model_version_by_alias(predictor, "staging").version == first["predictor"],
        60,
        0.5,
        "alias staging on the first version",
    )
    with scenario.ingress(
        name
    ) as http:  # Traefik has loaded the route (Ready says the pods are, not Traefik)
        wait_for(lambda: http.post("/predict", json=EXAMPLE).status_code == 200, 60, 0.2, "the route")

    answers: dict[str, int] = {}
    failures: list[str] = []
    alias_moved: list[dict[str, int]] = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 20,000 requests or 300 s
        deadline = time.monotonic() + 300
        with scenario.ingress(name) as http:
            for _ in range(20_000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    answer = http.post("/predict", json=EXAMPLE)
                except httpx.HTTPError as e:
                    failures.append(f"{type(e).__name__}: {e}")
                    continue
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text[:200]}")
                else:
                    version = served_versions(answer)
                    answers[version] = answers.get(version, 0) + 1

    def watch_alias() -> None:  # what the Deployment looked like when the registry first moved
        with scenario.cluster.api_client() as api:
            apps = client.AppsV1Api(api)
            while not stop.is_set():
                if registry.get_model_version_by_alias(predictor, "staging").version == second["predictor"]:
                    status = apps.read_namespaced_deployment(name, scenario.namespace).status
                    alias_moved.append(
                        {"updated": status.updated_replicas or 0, "available": status.available_replicas or 0}
                    )
                    return
                stop.wait(0.2)

    threads = [threading.Thread(target=load), threading.Thread(target=watch_alias)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(answers.values()) >= 20, 60, 0.2, "load running before the change")
        for role, version in second.items():
            doc["spec"]["models"][role]["version"] = version
        scenario.apply(doc)
        scenario.wait(
            name,
            extra=lambda o: (
                o["status"]["models"]["predictor"]["version"] == second["predictor"]
                and len(scenario.pods(name)) == 1
            ),
        )
        new_name = f"{predictor}/{second['predictor']}"
        wait_for(lambda: answers.get(new_name, 0) >= 20, 60, 0.2, "answers from the new version")
        wait_for(lambda: bool(alias_moved), 60, 0.2, "the registry's alias on the new version")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    total = sum(answers.values()) + len(failures)
    assert failures == [], f"{len(failures)} of {total} requests failed: {failures[:5]}"
    assert set(answers) == {f"{predictor}/{first['predictor']}", f"{predictor}/{second['predictor']}"}
    assert alias_moved[0] == {"updated": 1, "available": 1}, alias_moved
    print(f"rollout under load: {total} requests, {answers}")  # noqa: T201 - the figure the issue asks for


def test_a_killed_pod_is_replaced_and_traffic_recovers(scenario: Scenario) -> None:
    name = "wine-killed"
    scenario.deploy(name)
    scenario.wait(name)
    (pod,) = scenario.pods(name)
    kubectl(
        scenario.kubeconfig,
        "delete",
        "pod",
        "-n",
        scenario.namespace,
        pod["metadata"]["name"],
        "--wait=false",
    )
    reconciling = scenario.wait(name, "Reconciling", timeout=60)
    assert condition(reconciling, "Reconciling")["reason"] in ("PodsNotReady", "RollingOut")
    ready = scenario.wait(name)
    (replacement,) = scenario.pods(name)
    assert replacement["metadata"]["name"] != pod["metadata"]["name"]
    assert condition(ready, "Reconciling") is None
    with scenario.ingress(name) as http:
        wait_for(lambda: http.post("/predict", json=EXAMPLE).status_code == 200, 60, 0.5, "traffic recovered")


@dataclass
class Load:
    """Keep-alive connections sending the example to one Ingress host until stopped (bounded in count)."""

    base_url: str
    host: str
    connections: int
    limit: int = 40_000
    codes: list[int] = field(default_factory=list)  # 0: no answer at all
    failures: list[tuple[float, int, str]] = field(default_factory=list)  # when, code, body
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[threading.Thread]:
        def send() -> None:
            with httpx.Client(base_url=self.base_url, headers={"Host": self.host}, timeout=10) as http:
                while not self.stop.is_set() and len(self.codes) < self.limit:
                    try:
                        answer = http.post("/predict", json=EXAMPLE)
                        code, body = answer.status_code, answer.text[:80]
                    except httpx.HTTPError as e:
                        code, body = 0, type(e).__name__
                    self.codes.append(code)
                    if code != 200:
                        self.failures.append((time.monotonic(), code, body))

        threads = [threading.Thread(target=send, daemon=True) for _ in range(self.connections)]
        for thread in threads:
            thread.start()
        return threads

    @property
    def failed(self) -> int:
        return sum(code != 200 for code in self.codes)


def test_a_serving_container_killed_under_load_fails_almost_no_request(scenario: Scenario) -> None:
    """2 replicas, 8 keep-alive connections through Traefik, one serving container SIGKILLed: behind the
    operator's Ingress, then behind its HTTPRoute (spec.route), each with Traefik's retry Middleware. A
    request no pod received goes to another pod, so the only failures are the requests the killed container
    had received (or that were already written to its connections) when it died: within a second of the
    kill; none later, none before, and the survivor sheds (503) none of its twin's traffic. The counts are
    printed (the issue's figure: at most 0.1 % of the phase)."""
    gateway_namespace, gateway = GATEWAY
    names = {"ingress": "wine-crash", "route": "wine-crash-route"}
    for via, name in names.items():
        doc = scenario.manifest(name, replicas=2)
        if via == "route":
            del doc["spec"]["ingress"]
            doc["spec"]["route"] = {
                "gateway": {"name": gateway, "namespace": gateway_namespace},
                "hostnames": [f"{name}.modelops.test"],
            }
        scenario.apply(doc)
    for name in names.values():  # both roll out at once
        scenario.wait(name)
    for name in names.values():
        middleware = json.loads(
            kubectl(
                scenario.kubeconfig,
                "get",
                "middlewares.traefik.io",
                name,
                "-n",
                scenario.namespace,
                "-o",
                "json",
            )
        )
        assert middleware["spec"] == {"retry": {"attempts": 40, "initialInterval": "50ms"}}
    victims = {via: kill_one_container_under_load(scenario, name, via) for via, name in names.items()}

    def restarted(name: str, victim: str) -> bool:
        pods = {p["metadata"]["name"]: p for p in scenario.pods(name)}
        status = pods[victim]["status"]["containerStatuses"][0]
        return bool(status["restartCount"] >= 1 and status["ready"])

    for via, name in names.items():
        victim = victims[via]
        wait_for(
            lambda n=name, v=victim: restarted(n, v), 120, 1, f"the killed container ({via}) ready again"
        )


def kill_one_container_under_load(scenario: Scenario, name: str, via: str) -> str:
    """One phase: load through Traefik to `name`'s host, one of its pods' serving container SIGKILLed, 20 s
    measured; asserts what the test promises and returns the victim pod's name."""
    assert scenario.cluster.node is not None
    victim = scenario.pods(name)[0]
    container = victim["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    with scenario.ingress(name) as http:  # Traefik has loaded the route with its Middleware
        wait_for(lambda: http.post("/predict", json=EXAMPLE).status_code == 200, 60, 0.2, f"the {via}")
    load = Load(scenario.cluster.node.ingress_url, f"{name}.modelops.test", CRASH_CONNECTIONS)
    threads = load.run()
    wait_for(lambda: len(load.codes) >= 200, 30, 0.1, "the load under way")
    killed_at, before = time.monotonic(), len(load.codes)
    scenario.cluster.node.containerd.ctr("tasks", "kill", "--signal", "SIGKILL", container)
    time.sleep(20)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=15)
    phase = len(load.codes) - before
    kinds = Counter((code, body) for at, code, body in load.failures if at >= killed_at)
    spread = [round(at - killed_at, 2) for at, _, _ in load.failures if at >= killed_at]
    failed = sum(kinds.values())
    figures = (
        f"killed under load ({via}): {failed} of {phase} requests failed "
        f"({100 * failed / max(phase, 1):.3f} %) "
        f"in the 20 s after the kill ({dict(kinds)}, at {spread[:3]}..{spread[-3:]} s); "
        f"{len(load.failures) - failed} before it"
    )
    print(figures)  # noqa: T201 - the figure the issue asks for
    assert phase > 2000
    assert len(load.failures) == failed, figures  # none before the kill
    assert not [kind for kind in kinds if kind[0] == 503], figures  # the survivor shed nothing
    # Only at the moment it died: what was in flight on it, and what Traefik wrote to its pooled connections
    # in the millisecond before it saw them closed. A request balanced to its endpoint afterwards (connection
    # refused) is retried until Traefik drops the endpoint (1 to 2 s later); an exhausted retry would fail
    # after the attempts' 2.8 s.
    assert max(spread, default=0) < 1, figures
    return str(victim["metadata"]["name"])


CRASH_CONNECTIONS = 8


CANNOT_START = {
    # The kubelet may not pull (no registry here), and the image is not in containerd.
    "image": ({"image": {"reference": "modelops/never-built:0", "pullPolicy": "Never"}}, "ImagePullFailed"),
    # Killed by the kernel for its memory limit before it can serve: a real crash loop.
    "oom": (
        {"resources": {"requests": {"memory": "32Mi"}, "limits": {"memory": "48Mi"}}},
        "PodsCrashLooping",
    ),
}


@dataclass
class Seen:
    """The Reconciling and Stalled conditions the CANNOT_START cases went through, in order, read every
    half second by a thread until stopped (bounded: at most 10 minutes)."""

    scenario: Scenario
    history: dict[str, list[tuple[str, str, str]]] = field(
        default_factory=dict
    )  # name -> (type, reason, msg)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.stop.wait(0.5) and time.monotonic() < deadline:
            for case in CANNOT_START:
                name = f"wine-{case}"
                try:
                    obj = self.scenario.resource(name)
                except client.ApiException:
                    continue
                seen = self.history.setdefault(name, [])
                for ctype in ("Reconciling", "Stalled"):
                    found = condition(obj, ctype)
                    if found and found["status"] == "True":
                        entry = (ctype, found["reason"], found["message"])
                        if entry not in seen:
                            seen.append(entry)


@pytest.fixture(scope="module", autouse=True)
def cannot_start(
    real_cluster: LocalCluster,
    node_mlflow: LocalMlflowServer,
    node_image: str,
    trained_models: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Seen]:
    """The CANNOT_START cases, deployed as the module starts in a namespace (and operator) of their own: their
    progress deadlines run out while the module's other tests run (a wait of 90 s in nobody's way), and a
    thread records the conditions they pass through for test_a_pod_that_cannot_start_is_named_then_stalled,
    the module's last test."""
    with fresh_namespace(real_cluster) as namespace:
        log = tmp_path_factory.mktemp("cannot-start") / "operator.log"
        with LocalOperator(real_cluster.kubeconfig, log, [namespace]) as operator:
            scenario = Scenario(real_cluster, namespace, operator, node_mlflow, node_image, trained_models)
            for case, (spec, _) in CANNOT_START.items():
                scenario.deploy(f"wine-{case}", progressDeadlineSeconds=PROGRESS_DEADLINE_SECONDS, **spec)
            seen = Seen(scenario)
            thread = threading.Thread(target=seen.run, daemon=True)
            thread.start()
            try:
                yield seen
            finally:
                seen.stop.set()
                thread.join(timeout=30)


def test_drift_through_the_ingress_turns_the_status_from_the_pods(
    scenario: Scenario, wine_data_dir: Path
) -> None:
    name = "wine-drift"
    serving = {"serviceName": "WineQualityService", "driftWindowSize": 200, "driftWindowMinRows": 50}
    scenario.deploy(name, serving=serving)
    scenario.wait(name)
    (pod,) = scenario.pods(name)

    def drift_state(state: str) -> dict[str, Any] | None:
        drift = (scenario.resource(name).get("status") or {}).get("drift") or {}
        return drift if drift.get("state") == state else None

    wait_for(lambda: drift_state("Collecting"), 60, 0.5, "status.drift Collecting")
    normal, drifted = wine_records(wine_data_dir, 60, seed=31), wine_records(wine_data_dir, 200, seed=32)
    with scenario.ingress(name) as http:
        for batch in (normal, shifted(drifted, "alcohol", 3.0)):
            assert http.post("/predict", json=batch).status_code == 200
    drift = wait_for(lambda: drift_state("Drift"), 60, 0.5, "status.drift Drift")
    assert "alcohol" in drift["features"]
    assert drift["pods"] == "1/1 pods"
    assert drift["windowRows"] == 200
    assert drift["message"] == f"window drift on 1/1 tested pods ({pod['metadata']['name']})"
    wide = kubectl(scenario.kubeconfig, "get", "mdep", name, "-n", scenario.namespace, "-o", "wide")
    assert "alcohol" in wide.splitlines()[1]
    # The operator read the pod at its own address: no URL template in its environment.
    assert "MODELOPS_METRICS_URL_TEMPLATE" not in scenario.operator.env


def test_a_pod_that_cannot_start_is_named_then_stalled(cannot_start: Seen) -> None:
    """Each case of CANNOT_START (deployed side by side when the module started, their deadlines running
    while the other tests ran): Reconciling named the failing pod first, then Stalled with
    ProgressDeadlineExceeded names its container."""
    # The deadline leaves the failure time to show as Reconciling first, even on a busy 2-core machine
    # (an OOM crash loop needs a few restarts to reach CrashLoopBackOff).
    for case, (_, reason) in CANNOT_START.items():
        name = f"wine-{case}"
        # A crash-looping container is Running for a moment between its back-offs: the status written
        # then has no failing container to name, the next pod event adds it.
        stalled = cannot_start.scenario.wait(
            name,
            "Stalled",
            timeout=PROGRESS_DEADLINE_SECONDS + 120,
            extra=lambda o: "container model-server" in condition(o, "Stalled")["message"],
        )
        assert condition(stalled, "Stalled")["reason"] == "ProgressDeadlineExceeded", case
        assert condition(stalled, "Ready")["status"] == "False", case
        history = cannot_start.history[name]
        # (the thread reads every half second: Stalled may not be in the history yet)
        first_stalled = next(
            (i for i, (ctype, _, _) in enumerate(history) if ctype == "Stalled"), len(history)
        )
        named = [
            (ctype, why, message)
            for ctype, why, message in history[:first_stalled]
            if ctype == "Reconciling" and why == reason and f"pod {name}-" in message
        ]
        assert named, (case, history)
