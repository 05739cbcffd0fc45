"""The canary's pure parts: the pod split, what a pod's /metrics says, the checks, the state machine."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from modelops_operator import canary as cn
from modelops_operator.drift_probe import MAX_READY_BYTES, load_error_of, readiness_url_template
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import Canary, CanaryThresholds, ModelRef, SpecError, parse_spec
from modelops_operator.verification import format_time, gate_check, parse_time


def pod_text(
    ok: int = 100,
    errors: int = 0,
    fast: int = 90,
    slow: int = 10,
    rows: int = 100,
    outliers: int = 2,
    classes: dict[str, int] | None = None,
    drifted: tuple[str, ...] = (),
    tested: bool = True,
) -> str:
    """A pod's /metrics as the service writes it (BentoML's series and the service's own)."""
    common = 'endpoint="/predict",service_name="m",service_version="v",runner_name="ModelService"'
    bucket = "bentoml_service_request_duration_seconds_bucket"
    lines = [
        "# HELP bentoml_service_request_total Total number of runner RPC",
        "# TYPE bentoml_service_request_total counter",
        f'bentoml_service_request_total{{{common},http_response_code="200"}} {ok}.0',
        f'bentoml_service_request_total{{{common},http_response_code="500"}} {errors}.0',
        f'bentoml_service_request_total{{{common},http_response_code="400"}} 3.0',
        'bentoml_service_request_total{endpoint="/metrics",http_response_code="500"} 50.0',
        f'{bucket}{{{common},http_response_code="200",le="0.005"}} {fast}.0',
        f'{bucket}{{{common},http_response_code="200",le="0.01"}} {fast + slow}.0',
        f'{bucket}{{{common},http_response_code="200",le="+Inf"}} {fast + slow}.0',
        f'modelops_rows_total{{service="m"}} {rows}.0',
        f'modelops_outliers_total{{service="m"}} {outliers}.0',
    ]
    for label, count in (classes or {"5": 60, "6": 40}).items():
        lines.append(f'modelops_predictions_total{{service="m",class="{label}"}} {count}.0')
    if tested:
        for feature in ("alcohol", "pH"):
            lines.append(f'modelops_drift_p_value{{service="m",scope="window",feature="{feature}"}} 0.3')
            flag = 1 if feature in drifted else 0
            lines.append(
                f'modelops_drift_feature_detected{{service="m",scope="window",feature="{feature}"}} {flag}'
            )
    lines.append('modelops_drift_feature_detected{service="m",scope="request",feature="pH"} 1')
    return "\n".join(lines) + "\n"


def spec(**overrides: object) -> Canary:
    base = {"models": (("predictor", ModelRef("p", alias="challenger")),), "steps": (10, 25), "weight": 50}
    return Canary(**{**base, **overrides})  # type: ignore[arg-type]


def test_the_split_gives_each_side_a_pod_and_the_status_the_share_it_gets() -> None:
    assert cn.split(4, 25) == (3, 1)
    assert cn.split(10, 50) == (5, 5)
    assert cn.split(2, 10) == (1, 1)  # at least one canary pod: 50 %, not 10 %
    assert cn.split(1, 10) == (1, 1)
    assert cn.share(*cn.split(2, 10)) == 50
    assert cn.share(*cn.split(4, 25)) == 25
    assert cn.schedule(spec()) == (10, 25, 50)


def test_a_pods_metrics_are_read_for_model_requests_only() -> None:
    s = cn.pod_signals(pod_text(ok=100, errors=5, drifted=("pH",)))
    assert (s.requests, s.errors) == (108, 5)  # 200s, 500s and 400s of /predict; /metrics not counted
    assert s.error_rate == pytest.approx(5 / 108)
    assert (s.rows, s.outliers, s.outlier_rate) == (100, 2, 0.02)
    assert dict(s.classes) == {"5": 60, "6": 40}
    assert s.drifted == ("pH",)
    assert s.tested  # the window's flag, not the request's
    # p99 of 100 observations, 90 under 5 ms, 10 between 5 and 10: rank 99 -> 5 + 5 * 9/10 ms
    assert s.p99_ms == pytest.approx(9.5)


def test_quantiles_follow_prometheus_histogram_quantile() -> None:
    buckets = ((0.005, 0.0), (0.01, 50.0), (0.1, 100.0), (math.inf, 100.0))
    assert cn.quantile(0.5, buckets) == pytest.approx(0.01)
    assert cn.quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 49 / 50)
    assert cn.quantile(0.99, ((0.1, 0.0), (math.inf, 10.0))) == 0.1  # in +Inf: the highest finite bound
    assert cn.quantile(0.99, ()) is None
    assert cn.quantile(0.99, ((0.1, 0.0), (math.inf, 0.0))) is None


def test_pods_add_up_and_shifts_are_total_variation() -> None:
    both = cn.combine([cn.pod_signals(pod_text()), cn.pod_signals(pod_text(classes={"7": 100}))])
    assert both.pods == 2
    assert both.requests == 206
    assert dict(both.classes) == {"5": 60, "6": 40, "7": 100}
    assert cn.prediction_shift((("5", 60), ("6", 40)), (("5", 30), ("6", 20))) == pytest.approx(0)
    assert cn.prediction_shift((("5", 1),), (("6", 5),)) == pytest.approx(1)
    assert cn.prediction_shift((("5", 50), ("6", 50)), (("5", 100),)) == pytest.approx(0.5)
    assert cn.prediction_shift((), (("5", 1),)) is None


def failing(canary_text: str, stable_text: str | None = None, **thresholds: object) -> list[str]:
    t = CanaryThresholds(**thresholds)  # type: ignore[arg-type]
    found = cn.judge(t, cn.pod_signals(canary_text), cn.pod_signals(stable_text or pod_text()))
    return [f.check for f in found if not f.ok]


def test_each_check_fails_on_its_own_signal() -> None:
    assert failing(pod_text()) == []
    assert failing(pod_text(errors=10)) == ["errorRate"]
    assert failing(pod_text(drifted=("alcohol",))) == ["drift"]
    assert failing(pod_text(drifted=("alcohol",)), drift_free=False) == []
    # the traffic drifts (the stable pods flag it too): not the challenger's fault
    assert failing(pod_text(drifted=("alcohol",)), pod_text(drifted=("alcohol",))) == []
    assert failing(pod_text(drifted=("alcohol", "pH")), pod_text(drifted=("alcohol",))) == ["drift"]
    assert failing(pod_text(classes={"3": 100})) == ["predictionShift"]
    assert failing(pod_text(outliers=30)) == ["outlierRateDelta"]
    assert failing(pod_text(outliers=30), max_outlier_rate=0.1, max_outlier_rate_delta=None) == [
        "outlierRate"
    ]
    slow = pod_text(fast=0, slow=100)
    assert failing(slow, pod_text(fast=100, slow=0), max_latency_ratio=1.5) == ["latencyRatio"]
    assert failing(slow, max_latency_p99_ms=5.0, max_latency_ratio=None) == ["latencyP99Ms"]


def test_a_failed_check_says_its_value_and_threshold() -> None:
    found = cn.judge(CanaryThresholds(), cn.pod_signals(pod_text(errors=10)), cn.pod_signals(pod_text()))
    error = next(f for f in found if f.check == "errorRate")
    assert error.to_status() == {"check": "errorRate", "value": "0.0885", "threshold": "0.01"}
    assert error.describe() == "errorRate 0.0885 (threshold 0.01)"


def measured(canary_text: str, stable_text: str | None = None) -> tuple[cn.Signals, cn.Signals]:
    return cn.pod_signals(canary_text), cn.pod_signals(stable_text or pod_text())


T0 = "2026-12-07T10:00:00Z"


def at(seconds: int) -> str:
    return format_time(parse_time(T0) + dt.timedelta(seconds=seconds))


def test_a_good_canary_walks_its_steps_then_is_promoted() -> None:
    c = spec(step_seconds=60, analysis_seconds=120, interval_seconds=15, min_requests=50)
    state = cn.State.start("p/2,d/1,o/1", T0)
    state = cn.advance(state, c, measured(pod_text(ok=10, fast=10, slow=0)), at(0))
    assert state.step == 0
    assert "collecting, 13/50 requests" in state.message
    state = cn.advance(state, c, measured(pod_text()), at(30))
    assert state.step == 0
    assert state.phase == cn.PROGRESSING
    state = cn.advance(state, c, measured(pod_text()), at(60))
    assert state.step == 1
    assert state.step_started_at == at(60)
    assert state.message.startswith("step 2/3 (25 %)")
    state = cn.advance(state, c, measured(pod_text()), at(120))
    assert state.step == 2
    state = cn.advance(state, c, measured(pod_text()), at(200))
    assert state.phase == cn.PROGRESSING  # the last step is held analysisSeconds
    state = cn.advance(state, c, measured(pod_text()), at(240))
    assert state.phase == cn.PROMOTED
    assert state.decided_at == at(240)
    assert cn.advance(state, c, measured(pod_text(errors=100)), at(300)) == state  # decided is decided


def test_failures_in_a_row_roll_back_and_a_good_interval_resets_the_count() -> None:
    c = spec(failure_limit=2)
    state = cn.State.start("k", T0)
    state = cn.advance(state, c, measured(pod_text(classes={"3": 100})), at(15))
    assert state.phase == cn.PROGRESSING
    assert state.failures == 1
    assert "failed 1/2" in state.message
    state = cn.advance(state, c, measured(pod_text()), at(30))
    assert state.failures == 0
    state = cn.advance(state, c, measured(pod_text(classes={"3": 100})), at(45))
    state = cn.advance(state, c, measured(pod_text(classes={"3": 100})), at(60))
    assert state.phase == cn.ROLLED_BACK
    assert state.decided_at == at(60)
    assert state.failed == {"check": "predictionShift", "value": "1", "threshold": "0.2"}
    assert state.message.startswith("rolled back at step 1/3 (10 %): predictionShift 1")


def test_no_answer_is_not_a_verdict_and_analyses_keep_their_interval() -> None:
    c = spec(interval_seconds=15)
    state = cn.State.start("k", T0)
    assert cn.due(state, c, T0)
    state = cn.advance(state, c, None, T0)
    assert state.failures == 0
    assert "no canary pod answered" in state.message
    assert not cn.due(state, c, at(10))
    assert cn.due(state, c, at(15))


def test_the_state_survives_the_status_round_trip() -> None:
    state = cn.advance(cn.State.start("k", T0), spec(), measured(pod_text(errors=50)), at(15))
    assert cn.State.from_status(state.to_status()) == state
    assert cn.State.from_status(None) is None


def test_the_column_says_share_requests_latency_and_drift() -> None:
    state = cn.advance(
        cn.State.start("k", T0), spec(), measured(pod_text(ok=1200, fast=1200, slow=0)), at(15)
    )
    assert cn.column(state, "wine_quality v8", 25) == "wine_quality v8 25 %: 1,203 req, p99 4.95 ms, no drift"
    assert cn.column(cn.State("k", cn.ROLLED_BACK), "wine_quality v8", None) == "wine_quality v8 RolledBack"


RAW = {
    "registry": {"trackingUri": "http://mlflow:5000"},
    "models": {r: {"name": r, "version": "1"} for r in ("predictor", "drift", "outlier")},
    "image": {"reference": "svc:1"},
}


def test_the_spec_names_the_challenger_and_its_steps() -> None:
    parsed = parse_spec(
        {
            **RAW,
            "verification": {"environment": "staging"},
            "canary": {"models": {"predictor": {"name": "p", "alias": "challenger"}}, "steps": [10, 25]},
        }
    )
    assert parsed.canary is not None
    assert dict(parsed.canary.models) == {"predictor": ModelRef("p", alias="challenger")}
    assert parsed.canary.environment == "staging"  # the verification's, unless given
    for bad in (
        {"models": {}},
        {"models": {"judge": {"name": "x", "version": "1"}}},
        {"models": {"predictor": {"name": "p", "version": "2"}}, "steps": [25, 10]},
        {"models": {"predictor": {"name": "p", "version": "2"}}, "steps": [50], "weight": 50},
    ):
        with pytest.raises(SpecError):
            parse_spec({**RAW, "canary": bad})


def test_the_production_gate_refuses_a_version_a_canary_rejected() -> None:
    models = {"predictor": ResolvedModel("p", "2", "r", "s")}
    tags = {"predictor": {"modelops.rejected.staging": '{"check": "errorRate"}'}}
    check = gate_check(models, tags, ["staging"])
    assert not check.ok
    assert check.reason == "RejectedByCanary"
    assert "p/2 was rejected by a canary in staging" in check.message
    assert gate_check(models, tags, ["prod"]).reason == "AwaitingVerification"  # rejected elsewhere only


def test_a_crash_looping_canary_pod_fails_analyses_without_requests() -> None:
    c = spec(failure_limit=2)
    state = cn.State.start("k", T0)
    failing = "pod wine-canary-x: container model-server CrashLoopBackOff (3 restarts; last exit code 1)"
    state = cn.advance(state, c, None, at(15), failing)
    assert state.failures == 1
    state = cn.advance(state, c, None, at(30), failing)
    assert state.phase == cn.ROLLED_BACK
    assert state.failed is not None
    assert state.failed["check"] == "podsFailing"
    assert "CrashLoopBackOff" in state.message


def test_events_announce_a_start_each_step_and_the_decision() -> None:
    c = spec()
    started = cn.State.start("k", T0)
    assert cn.transitions(None, started, c, "m v2") == [
        ("Normal", "CanaryStarted", "m v2: canary started at 10 %")
    ]
    assert cn.transitions(started, started, c, "m v2") == []
    moved = cn.State("k", step=1, message="step 2/3 (25 %): ...")
    assert cn.transitions(started, moved, c, "m v2") == [
        ("Normal", "CanaryStep", "m v2: step 2/3 (25 %): ...")
    ]
    back = cn.State("k", cn.ROLLED_BACK, message="rolled back at ...")
    assert cn.transitions(moved, back, c, "m v2") == [
        ("Warning", "CanaryRolledBack", "m v2: rolled back at ...")
    ]
    assert cn.transitions(None, back, c, "m v2") == [
        ("Warning", "CanaryRolledBack", "m v2: rolled back at ...")
    ]


def test_the_operator_metrics_carry_each_value_and_threshold() -> None:
    from modelops_operator import metrics

    state = cn.advance(cn.State.start("k", T0), spec(), measured(pod_text(errors=10)), at(15))
    body = {
        "metadata": {"namespace": "ns", "name": "wine"},
        "spec": {"canary": {"thresholds": {"maxLatencyP99Ms": 250}}},
        "status": {"canary": {**state.to_status(), "share": 25}},
    }
    samples = {(g._name, labels): v for g, labels, v in metrics.canary_samples(body)}
    assert samples[
        "modelops_modeldeployment_canary_value", ("ns", "wine", "errorRate", "canary")
    ] == pytest.approx(0.0885)
    assert samples["modelops_modeldeployment_canary_value", ("ns", "wine", "requests", "stable")] == 103
    assert samples["modelops_modeldeployment_canary_threshold", ("ns", "wine", "maxLatencyP99Ms")] == 250
    assert (
        samples["modelops_modeldeployment_canary_threshold", ("ns", "wine", "maxErrorRate")] == 0.01
    )  # the default
    assert ("ns", "wine", "maxOutlierRate") not in {labels for (_, labels) in samples}  # off
    assert samples["modelops_modeldeployment_canary_phase", ("ns", "wine", "Progressing")] == 1
    assert samples["modelops_modeldeployment_canary_share_percent", ("ns", "wine")] == 25
    assert metrics.canary_samples({**body, "spec": {}}) == []


def test_a_hostile_pods_feature_names_reach_the_status_bounded() -> None:
    many = tuple(f"feature_{i:04d}_" + "x" * 50 for i in range(500))
    signals = cn.Signals(pods=1, requests=100, drifted=many, tested=True)
    text = cn.drift_text(signals)
    assert len(text) <= cn.MAX_TEXT
    assert text.endswith("(500 features)")
    finding = next(f for f in cn.judge(CanaryThresholds(), signals, cn.Signals()) if f.check == "drift")
    assert finding.value == text
    assert not finding.ok


def test_canary_pods_that_never_become_ready_roll_it_back_after_the_deadline() -> None:
    c = spec(failure_limit=2)
    state = cn.State.start("k", T0)
    state = cn.advance(state, c, None, at(60), None, 120)
    assert state.failures == 0  # still within the deadline: waiting, not failing
    state = cn.advance(state, c, None, at(125), None, 120)
    assert state.failures == 1
    state = cn.advance(state, c, None, at(130), None, 120)
    assert state.phase == cn.ROLLED_BACK
    assert state.failed == {"check": "podsReady", "value": "none after 130 s", "threshold": "within 120 s"}


def test_the_readiness_url_comes_from_the_metrics_template_or_not_at_all() -> None:
    assert (
        readiness_url_template("http://{address}:{port}/metrics") == "http://{address}:{port}/v2/health/ready"
    )
    assert (
        readiness_url_template("http://proxy/{namespace}/{pod}/metrics")
        == "http://proxy/{namespace}/{pod}/v2/health/ready"
    )
    assert (
        readiness_url_template("http://proxy/scrape?pod={pod}") is None
    )  # not the service's path: not asked


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            503,
            {"error": "cannot load models:/m/6: no MLmodel", "reason": "ModelLoadError"},
            "cannot load models:/m/6: no MLmodel",
        ),
        (
            503,
            {"error": "the models are still loading", "reason": "NotReady"},
            None,
        ),  # loading: not a failure
        (200, {"ready": True}, None),
        (503, {"error": "x" * 1000, "reason": "ModelLoadError"}, "x" * 300),  # a tenant's pod: cut
        (503, ["ModelLoadError"], None),
        (503, "not json", None),
    ],
)
def test_a_pod_says_its_models_do_not_load_only_in_the_protocols_words(
    status: int, body: object, expected: str | None
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert load_error_of(status, raw) == expected


def test_an_oversized_readiness_answer_is_not_read() -> None:
    body = json.dumps({"error": "x", "reason": "ModelLoadError", "pad": "y" * MAX_READY_BYTES}).encode()
    assert load_error_of(503, body) is None
