"""The canary on the real node: challengers named by a registry alias, real pods, traffic through Traefik.

One ModelDeployment lives through what a data scientist does with the alias `challenger`: a version
trained to predict one class is rolled back on its prediction shift and marked rejected in the registry;
a good version walks its steps (the operator restarted in the middle), is promoted (`champion` moves and
the stable pods roll to it); moving the alias back to the rejected version starts nothing. Load runs
through the Ingress the whole time: no request may fail.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from kubernetes import client
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from modelops_cluster.nodeconfig import GATEWAY
from modelops_detectors.pyfunc import log_drift_model
from modelops_operator.drift_status import samples
from modelops_support.kubectl import kubectl
from modelops_support.waiting import wait_for
from modelops_training.data import load_wine
from modelops_training.pipeline import SKOPS_TRUSTED_TYPES, fit_drift_detector, quiet_signature
from tests.fixtures.data import wine_records
from tests.fixtures.node import CANARY_ENVIRONMENT
from tests.fixtures.operator import version_without_files
from tests.fixtures.scenario import Scenario
from tests.monitoring import dashboard, dashboard_expressions, metric_names

pytestmark = pytest.mark.cluster

NAME = "wine-canary"


@contextlib.contextmanager
def logging_to(scenario: Scenario, run_name: str) -> Iterator[None]:
    """An MLflow run in the scenario's registry (the process-wide tracking URI restored after)."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(scenario.mlflow.tracking_uri)
    try:
        with mlflow.start_run(run_name=run_name):
            yield
    finally:
        mlflow.set_tracking_uri(before)


def one_class_version(scenario: Scenario, data_dir: Path, predictor: str) -> str:
    """A version of the predictor that answers class 1 for every row (a shifted challenger)."""
    data = load_wine(data_dir)
    model = DummyClassifier(strategy="constant", constant=1).fit(data.X, data.y)
    example = data.X.head(5)
    with logging_to(scenario, "one-class challenger"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=quiet_signature(example, model.predict(example)),
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=predictor,
        )
    return str(info.registered_model_version)


def broken_version(scenario: Scenario, data_dir: Path, predictor: str) -> str:
    """A version of the predictor that loads but fails every prediction (its coefficients cut short): the
    service answers 500 InternalError for each request."""
    data = load_wine(data_dir)
    example = data.X.head(5)
    model = LogisticRegression(max_iter=20).fit(data.X, data.y)
    signature = quiet_signature(example, model.predict(example))
    model.coef_ = model.coef_[:, :3]
    with logging_to(scenario, "broken challenger"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=predictor,
        )
    return str(info.registered_model_version)


def drifting_detector_version(scenario: Scenario, data_dir: Path, drift: str) -> str:
    """A version of the drift detector whose reference has alcohol 3 points higher: it flags normal rows."""
    data = load_wine(data_dir)
    reference = data.X.assign(alcohol=data.X["alcohol"] + 3.0)
    with logging_to(scenario, "drifting detector"):
        info = log_drift_model(
            fit_drift_detector(reference), data.X.head(5), name="drift_detector", registered_model_name=drift
        )
    return str(info.registered_model_version)


class Load:
    """Requests of real rows (4 a request, one keep-alive connection) through Traefik's entry point with a
    route's Host header until stopped: bounded, 60,000 requests or 600 s."""

    def __init__(self, url: str, host: str, records: list[dict[str, Any]]) -> None:
        self.url, self.host, self.records = url, host, records
        self.answers: Counter[str] = Counter()  # predictor version -> answers
        self.first_seen: dict[str, float] = {}
        self.classes: dict[str, Counter[Any]] = {}
        self.failures: list[str] = []
        self.failed_at: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        deadline = time.monotonic() + 600
        with httpx.Client(base_url=self.url, headers={"Host": self.host}, timeout=30) as http:
            for i in range(60_000):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                batch = [self.records[(4 * i + k) % len(self.records)] for k in range(4)]
                try:
                    answer = http.post("/predict", json=batch)
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")
                    self.failed_at.append(time.monotonic())
                    continue
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
                    self.failed_at.append(time.monotonic())
                    continue
                body = answer.json()
                version = str(body["model_versions"]["predictor"]).rsplit("/", 1)[1]
                self.answers[version] += 1
                self.first_seen.setdefault(version, time.monotonic())
                counts = self.classes.setdefault(version, Counter())
                counts.update(p["class"] for p in body["predictions"])

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def canary_status_of(scenario: Scenario, name: str) -> dict[str, Any]:
    return (scenario.resource(name).get("status") or {}).get("canary") or {}


def canary_status(scenario: Scenario) -> dict[str, Any]:
    return canary_status_of(scenario, NAME)


def wait_decision(scenario: Scenario, prefix: str, phase: str, what: str) -> dict[str, Any]:
    """status.canary once the challenger whose key starts with `prefix` is decided and recorded."""

    def decided() -> dict[str, Any] | None:
        found = canary_status(scenario)
        ok = found.get("key", "").startswith(prefix) and found.get("phase") == phase and found.get("recorded")
        return found if ok else None

    return wait_for(decided, 240, 0.5, what)


def canary_deployment_of(scenario: Scenario, name: str) -> Any:
    with scenario.cluster.api_client() as api:
        found = client.AppsV1Api(api).list_namespaced_deployment(
            scenario.namespace, field_selector=f"metadata.name={name}-canary"
        )
        return found.items[0] if found.items else None


def canary_deployment(scenario: Scenario) -> Any:
    return canary_deployment_of(scenario, NAME)


def test_challengers_by_alias_are_rolled_back_or_promoted_under_load(
    scenario: Scenario, wine_data_dir: Path
) -> None:
    registry = scenario.registry
    predictor = scenario.trained["models"]["predictor"]["name"]
    drift = scenario.trained["models"]["drift"]["name"]
    stable, good = scenario.new_versions(), scenario.new_versions()
    bad = one_class_version(scenario, wine_data_dir, predictor)
    broken = broken_version(scenario, wine_data_dir, predictor)
    drifting = drifting_detector_version(scenario, wine_data_dir, drift)
    registry.set_registered_model_alias(predictor, "champion", stable["predictor"])
    registry.set_registered_model_alias(predictor, "challenger", stable["predictor"])
    registry.set_registered_model_alias(drift, "challenger", stable["drift"])
    doc = scenario.manifest(NAME, versions=stable, replicas=2)
    doc["spec"]["models"]["predictor"] = {"name": predictor, "alias": "champion"}
    doc["spec"]["serving"] = {
        **doc["spec"].get("serving", {}),
        "driftWindowSize": 200,
        "driftWindowMinRows": 100,
    }
    doc["spec"]["canary"] = {
        "models": {
            "predictor": {"name": predictor, "alias": "challenger"},
            "drift": {"name": drift, "alias": "challenger"},
        },
        "steps": [25],
        "weight": 50,
        "stepSeconds": 10,
        "analysisSeconds": 10,
        "intervalSeconds": 5,
        "minRequests": 40,
        "failureLimit": 2,
        "environment": CANARY_ENVIRONMENT,
    }
    scenario.apply(doc)
    scenario.wait(NAME, extra=lambda o: o["status"].get("readyReplicas") == 2)
    ready = scenario.resource(NAME)
    canary_condition = next(c for c in ready["status"]["conditions"] if c["type"] == "Canary")
    assert canary_condition["reason"] == "NoChallenger"
    records = wine_records(wine_data_dir, 2000, seed=41)

    assert scenario.cluster.node is not None
    with Load(scenario.cluster.node.ingress_url, f"{NAME}.modelops.test", records) as load:
        wait_for(lambda: sum(load.answers.values()) >= 50, 60, 0.2, "load before the first challenger")
        assert set(load.classes[stable["predictor"]]) == {0, 1}, "the stable model answers both classes"

        # A challenger that predicts one class: rolled back on its shift, rejected in the registry.
        moved = time.monotonic()
        registry.set_registered_model_alias(predictor, "challenger", bad)
        wait_for(lambda: bad in load.first_seen, 240, 0.2, "the one-class challenger's first answer")
        bad_first_answer = load.first_seen[bad] - moved
        rolled_back = wait_decision(
            scenario, f"{predictor}/{bad},", "RolledBack", "the one-class one rolled back"
        )
        bad_decision = time.monotonic() - load.first_seen[bad]
        # (its failing checks are all in the message; `failed` holds the first, which a window's chance
        # drift on the canary's pod can precede)
        assert "predictionShift" in rolled_back["message"], rolled_back
        assert float(rolled_back["message"].split("predictionShift ", 1)[1].split()[0]) > 0.2
        tags = registry.get_model_version(predictor, bad).tags
        record = json.loads(tags[f"modelops.rejected.{CANARY_ENVIRONMENT}"])
        assert record["failed"]["check"] in ("predictionShift", "drift")
        assert record["deployment"] == f"{scenario.namespace}/{NAME}"
        wait_for(lambda: canary_deployment(scenario) is None, 60, 0.5, "the canary Deployment removed")
        condition = next(c for c in scenario.resource(NAME)["status"]["conditions"] if c["type"] == "Canary")
        assert condition["reason"] == "RolledBack"
        assert "predictionShift" in condition["message"]

        # A challenger that answers 500: its share of the requests fails until it is rolled back.
        broken_moved = time.monotonic()
        requests_before = sum(load.answers.values()) + len(load.failures)
        registry.set_registered_model_alias(predictor, "challenger", broken)
        errors = wait_decision(scenario, f"{predictor}/{broken},", "RolledBack", "the broken one rolled back")
        broken_decision = time.monotonic() - broken_moved
        assert errors["failed"]["check"] == "errorRate", errors
        assert float(errors["failed"]["value"]) > 0.3
        decided = time.monotonic()
        wait_for(lambda: canary_deployment(scenario) is None, 60, 0.5, "the canary Deployment removed")
        error_requests = sum(load.answers.values()) + len(load.failures) - requests_before
        assert f"modelops.rejected.{CANARY_ENVIRONMENT}" in registry.get_model_version(predictor, broken).tags

        # A challenger whose models do not load (its files are gone): its pod runs, never ready (it retries
        # the download), never gets a request, and says why on its readiness route: rolled back on that
        # (podsFailing) at once, not after progressDeadlineSeconds; rejected in the registry.
        missing = version_without_files(registry, predictor)
        missing_moved = time.monotonic()
        registry.set_registered_model_alias(predictor, "challenger", missing)
        crashed = wait_decision(
            scenario, f"{predictor}/{missing},", "RolledBack", "the one that cannot start"
        )
        missing_decision = time.monotonic() - missing_moved
        assert crashed["failed"]["check"] == "podsFailing", crashed
        assert "its models do not load" in crashed["failed"]["value"], crashed
        assert f"models:/{predictor}/{missing}" in crashed["failed"]["value"], crashed
        assert (
            f"modelops.rejected.{CANARY_ENVIRONMENT}" in registry.get_model_version(predictor, missing).tags
        )
        assert missing not in load.first_seen
        wait_for(lambda: canary_deployment(scenario) is None, 60, 0.5, "the canary Deployment removed")

        # A good challenger: its steps, an operator restart in the middle, promotion, the stable rolls.
        answers_before = sum(load.answers.values())
        moved = time.monotonic()
        registry.set_registered_model_alias(predictor, "challenger", good["predictor"])
        wait_for(lambda: good["predictor"] in load.first_seen, 240, 0.2, "the good challenger's first answer")
        good_first_answer = load.first_seen[good["predictor"]] - moved
        wait_for(lambda: canary_status(scenario).get("step") == 1, 120, 0.5, "the canary's second step")
        started = canary_status(scenario)["startedAt"]
        scenario.operator.stop()
        scenario.operator.start()
        at_share = Counter(load.answers)
        wait_for(
            lambda: sum(load.answers.values()) - sum(at_share.values()) >= 400, 120, 0.2, "traffic at 50 %"
        )
        window = load.answers - at_share
        measured_share = 100 * window[good["predictor"]] / sum(window.values())
        promoted = wait_decision(
            scenario, f"{predictor}/{good['predictor']},", "Promoted", "the good one promoted"
        )
        assert promoted["startedAt"] == started, "the restarted operator resumed the canary, not a new one"
        # Every canary series the chart's dashboard reads is on the operator's /metrics, with the values.
        exported = {
            (name, labels.get("check"), labels.get("side"), labels.get("phase")): value
            for name, labels, value in samples(httpx.get(scenario.operator.metrics_url, timeout=10).text)
            if labels.get("namespace") == scenario.namespace and labels.get("name") == NAME
        }
        read = set().union(*(metric_names(q) for q in dashboard_expressions(dashboard())))
        canary_series = {n for n in read if n.startswith("modelops_modeldeployment_canary_")}
        assert len(canary_series) == 4
        assert canary_series <= {name for name, *_ in exported}
        assert exported["modelops_modeldeployment_canary_phase", None, None, "Promoted"] == 1
        measured_requests = exported["modelops_modeldeployment_canary_value", "requests", "canary", None]
        assert measured_requests >= 40
        assert registry.get_model_version_by_alias(predictor, "champion").version == good["predictor"]
        assert (
            f"modelops.canary.{CANARY_ENVIRONMENT}"
            in registry.get_model_version(predictor, good["predictor"]).tags
        )
        scenario.wait(
            NAME,
            timeout=300,
            extra=lambda o: (
                o["status"]["models"]["predictor"]["version"] == good["predictor"]
                and o["status"].get("readyReplicas") == 2
            ),
        )
        wait_for(lambda: canary_deployment(scenario) is None, 60, 0.5, "the canary Deployment removed")
        wait_for(
            lambda: (
                len(scenario.pods(NAME)) == 2
                and all(
                    p["metadata"]["annotations"]["modelops.dev/models"].startswith(
                        f"{predictor}/{good['predictor']},"
                    )
                    for p in scenario.pods(NAME)
                )
            ),
            120,
            0.5,
            "two stable pods serving the promoted version",
        )
        after_promotion = sum(load.answers.values()) - answers_before

        # A challenger whose drift detector flags the normal traffic: rolled back on drift.
        drift_moved = time.monotonic()
        registry.set_registered_model_alias(drift, "challenger", drifting)
        prefix = f"{predictor}/{good['predictor']},{drift}/{drifting},"
        drifted = wait_decision(scenario, prefix, "RolledBack", "the drifting detector rolled back")
        drift_decision = time.monotonic() - drift_moved
        assert drifted["failed"]["check"] == "drift", drifted
        assert "alcohol" in drifted["failed"]["value"]
        assert f"modelops.rejected.{CANARY_ENVIRONMENT}" in registry.get_model_version(drift, drifting).tags
        assert (
            f"modelops.rejected.{CANARY_ENVIRONMENT}"
            not in registry.get_model_version(predictor, good["predictor"]).tags
        ), "only the versions that differ from stable are rejected"
        wait_for(lambda: canary_deployment(scenario) is None, 60, 0.5, "the canary Deployment removed")

    # The rejected version never starts a canary again.
    registry.set_registered_model_alias(predictor, "challenger", bad)
    wait_for(
        lambda: canary_status(scenario).get("key", "").startswith(f"{predictor}/{bad},"),
        60,
        0.5,
        "the rejected challenger seen",
    )
    again = canary_status(scenario)
    assert again["phase"] == "RolledBack"
    assert "rejected:" in again["message"]
    assert canary_deployment(scenario) is None

    total = sum(load.answers.values()) + len(load.failures)
    # Only the broken challenger answers 500 InternalError (the others never fail a valid request): its
    # share while it served, until its pod left the endpoints after the rollback (preStop 5 s at most).
    broken_at = [
        t
        for f, t in zip(load.failures, load.failed_at, strict=True)
        if t >= broken_moved and f.startswith("500: ") and "InternalError" in f
    ]
    error_failures = [f for f in load.failures if f.startswith("500: ") and "InternalError" in f]
    outside = [f for f in load.failures if f not in error_failures]
    print(  # noqa: T201 - the figures docs/canary.md and the issue ask for
        f"canary: {total} requests; alias move -> first canary answer {bad_first_answer:.1f} s "
        f"(one-class), {good_first_answer:.1f} s (good); "
        f"one-class first answer -> rollback {bad_decision:.1f} s; "
        f"share at the Ingress {measured_share:.1f} % (pods 50 %); {after_promotion} requests from the good "
        f"challenger's alias move to two promoted pods; drifting detector's alias move -> rollback "
        f"{drift_decision:.1f} s; broken challenger's alias move -> rollback {broken_decision:.1f} s, "
        f"{len(error_failures)} of its phase's {error_requests} requests answered 500, the last "
        f"{max(broken_at, default=decided) - decided:.1f} s after the decision; "
        f"challenger that cannot start: alias move -> rollback {missing_decision:.1f} s; "
        f"{len(outside)} other failures"
    )
    assert outside == [], f"{len(outside)} of {total} requests failed: {outside[:5]}"
    assert len(broken_at) == len(error_failures), "an InternalError before the broken challenger served"
    assert broken_at, "the broken challenger answered no request"
    assert max(broken_at) <= decided + 10, "the broken challenger kept answering after its rollback"
    assert len(error_failures) <= 0.6 * error_requests, "failures beyond the canary's share"
    assert abs(measured_share - 50) <= 10, f"canary share at the Ingress {measured_share:.1f} % (pods: 50 %)"
    wide = kubectl(scenario.kubeconfig, "get", "mdep", NAME, "-n", scenario.namespace, "-o", "wide")
    assert "CANARY" in wide.splitlines()[0]
    assert f"{predictor} v{bad} RolledBack" in wide.splitlines()[1]
    with scenario.cluster.api_client() as api:
        events = client.CoreV1Api(api).list_namespaced_event(
            scenario.namespace, field_selector=f"involvedObject.name={NAME}"
        )
    reasons = {e.reason for e in events.items}
    assert {"CanaryStarted", "CanaryStep", "CanaryPromoted", "CanaryRolledBack"} <= reasons, reasons
    exposed = httpx.get(scenario.operator.metrics_url, timeout=10).text
    ours = {
        (name, labels.get("phase") or labels.get("check")): value
        for name, labels, value in samples(exposed)
        if labels.get("namespace") == scenario.namespace and labels.get("name") == NAME
    }
    assert ours["modelops_modeldeployment_canary_phase", "RolledBack"] == 1
    assert ours["modelops_modeldeployment_canary_phase", "Progressing"] == 0
    assert ours["modelops_modeldeployment_canary_threshold", "maxPredictionShift"] == 0.2


def test_a_route_gives_the_canary_its_exact_weight(scenario: Scenario, wine_data_dir: Path) -> None:
    """spec.route: an HTTPRoute on the cluster's Gateway (Traefik's Gateway API provider) instead of the
    Ingress; once the alias moves, the canary's Service gets exactly its weight of the requests whatever
    the pod counts, and no request fails on the way in or out."""
    name = "wine-route"
    registry = scenario.registry
    predictor = scenario.trained["models"]["predictor"]["name"]
    stable, challenger = scenario.new_versions(), scenario.new_versions()
    registry.set_registered_model_alias(predictor, "route-challenger", stable["predictor"])
    doc = scenario.manifest(name, versions=stable, replicas=2)
    del doc["spec"]["ingress"]
    gateway_namespace, gateway = GATEWAY
    host = f"{name}.modelops.test"
    doc["spec"]["route"] = {"gateway": {"name": gateway, "namespace": gateway_namespace}, "hostnames": [host]}
    doc["spec"]["canary"] = {
        "models": {"predictor": {"name": predictor, "alias": "route-challenger"}},
        "weight": 25,
        "analysisSeconds": 3600,  # held: the share is what is measured here
        "intervalSeconds": 5,
        "minRequests": 40,
    }
    scenario.apply(doc)
    scenario.wait(name, extra=lambda o: o["status"].get("readyReplicas") == 2)
    assert scenario.resource(name)["status"]["url"] == f"http://{host}/"
    assert scenario.cluster.node is not None
    with Load(scenario.cluster.node.ingress_url, host, wine_records(wine_data_dir, 400, seed=43)) as load:
        wait_for(lambda: sum(load.answers.values()) >= 50, 60, 0.2, "load through the Gateway")
        moved = time.monotonic()
        registry.set_registered_model_alias(predictor, "route-challenger", challenger["predictor"])
        wait_for(lambda: challenger["predictor"] in load.answers, 180, 0.2, "the canary's first answer")
        before = Counter(load.answers)
        wait_for(lambda: sum((load.answers - before).values()) >= 2000, 120, 0.2, "2,000 answers at 25 %")
        window = load.answers - before
        status = canary_status_of(scenario, name)

        # The canary dropped from the spec: its pods and Service go, the route sends everything to stable.
        del doc["spec"]["canary"]
        dropped = time.monotonic()
        scenario.apply(doc)
        wait_for(lambda: route_backends(scenario, name) == [f"{name}-stable"], 60, 0.5, "the route on stable")
        wait_for(lambda: canary_deployment_of(scenario, name) is None, 60, 0.5, "the canary Deployment gone")
        after = Counter(load.answers)
        wait_for(lambda: sum((load.answers - after).values()) >= 200, 60, 0.2, "answers after the canary")
        late = load.answers - after
    share = 100 * window[challenger["predictor"]] / sum(window.values())
    print(  # noqa: T201 - the figure docs/canary.md gives
        f"route: canary share {share:.1f} % of {sum(window.values())} (weight 25 %, pods 1 + 1); "
        f"{sum(load.answers.values())} requests, {len(load.failures)} failed "
        f"(at {sorted({round(t - moved, 1) for t in load.failed_at})[:10]} s after the alias moved; "
        f"the canary was dropped at {dropped - moved:.1f} s)"
    )
    assert load.failures == [], load.failures[:5]
    assert abs(share - 25) <= 2, window
    assert status["share"] == 25
    assert (status["stablePods"], status["canaryPods"]) == (1, 1)
    assert set(late) == {stable["predictor"]}, late


def route_backends(scenario: Scenario, name: str) -> list[str]:
    with scenario.cluster.api_client() as api:
        route = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name
        )
    return [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]]
