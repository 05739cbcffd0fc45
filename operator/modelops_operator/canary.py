"""The canary (spec.canary), pure parts: the pod split, what a pod's /metrics says, the checks and the
state machine kept in status.canary. canary_step.py does the I/O.

A challenger runs in its own Deployment whose pods the one Service selects beside the stable ones, so the
Ingress splits traffic by pods: the canary's share is its pod count over all pods (`split`), which the
status reports as it is, not as asked. Every `intervalSeconds` the operator reads each ready pod's
/metrics and sums the canary pods and the stable pods apart (`Signals`): model requests and their 5xx,
the latency histogram (p99 interpolated as Prometheus' histogram_quantile does), rows and outliers, the
predicted classes, and window drift. The counters are cumulative since each pod started: the canary's
pods are as old as the canary, so its figures cover the whole canary, and an operator restart loses
nothing. `judge` compares them with the thresholds once the canary has `minRequests`; `advance` moves the
state: a passed analysis after a step's hold moves to the next step (the last one promotes), and
`failureLimit` failed analyses in a row roll back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelops_operator.drift_status import WINDOW, samples
from modelops_operator.spec import Canary, CanaryThresholds
from modelops_operator.verification import REJECTED_TAG_PREFIX, parse_time

TRACK_LABEL = "modelops.dev/track"  # "canary" on the challenger's pods (the stable pods have none)
CANARY = "canary"
STABLE = "stable"  # on the stable pods only with spec.route (its Service selects them apart)
PROMOTED_TAG_PREFIX = "modelops.canary."
PROGRESSING, PROMOTED, ROLLED_BACK = "Progressing", "Promoted", "RolledBack"
ENDED = (PROMOTED, ROLLED_BACK)
# The service's model endpoints: /predict and the Open Inference Protocol's infer.
MODEL_ENDPOINT_SUFFIXES = ("/predict", "/infer")
MAX_CLASSES = 64  # predicted classes kept per side (the service bounds its label set too)
MAX_TEXT = 200  # a pod's words (feature names) in the status: a pod's /metrics is its tenant's to write
REQUEST_METRIC = "bentoml_service_request_total"
DURATION_BUCKET_METRIC = "bentoml_service_request_duration_seconds_bucket"


def canary_name(name: str) -> str:
    """The canary Deployment of the ModelDeployment `name`."""
    return f"{name}-canary"


def rejected_tag(environment: str) -> str:
    return f"{REJECTED_TAG_PREFIX}{environment}"


def promoted_tag(environment: str) -> str:
    return f"{PROMOTED_TAG_PREFIX}{environment}"


# ------------------------------------------------------------------------------------------ the split


def schedule(canary: Canary) -> tuple[int, ...]:
    """The traffic shares asked for, in order: the steps, then the weight."""
    return (*canary.steps, canary.weight)


def split(replicas: int, weight: int) -> tuple[int, int]:
    """(stable pods, canary pods) for `replicas` pods and a share of `weight` percent: at least one of
    each; the canary takes its share of the replicas (rounded), the stable the rest."""
    replicas = max(replicas, 1)
    canary = max(1, round(replicas * weight / 100))
    if replicas >= 2:
        canary = min(canary, replicas - 1)
    return max(1, replicas - canary), canary


def share(stable: int, canary: int) -> int:
    """The canary's share of the traffic in percent when the Ingress spreads requests over all pods."""
    total = stable + canary
    return round(100 * canary / total) if total else 0


# ----------------------------------------------------------------------------------- what pods report


@dataclass(frozen=True)
class Signals:
    """What a set of pods' /metrics add up to (cumulative since each pod started)."""

    pods: int = 0
    requests: float = 0.0  # model requests (any answer)
    errors: float = 0.0  # of which 5xx
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound s, cumulative count), rising
    rows: float = 0.0
    outliers: float = 0.0
    classes: tuple[tuple[str, float], ...] = ()  # predicted class -> rows
    drifted: tuple[str, ...] = ()  # features a window test flagged on some pod
    tested: bool = False  # some pod has tested its window

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def outlier_rate(self) -> float | None:
        return self.outliers / self.rows if self.rows else None

    @property
    def p99_ms(self) -> float | None:
        value = quantile(0.99, self.buckets)
        return None if value is None else value * 1000.0

    def __add__(self, other: Signals) -> Signals:
        buckets: dict[float, float] = dict(self.buckets)
        for bound, count in other.buckets:
            buckets[bound] = buckets.get(bound, 0.0) + count
        classes: dict[str, float] = dict(self.classes)
        for label, count in other.classes:
            classes[label] = classes.get(label, 0.0) + count
        return Signals(
            pods=self.pods + other.pods,
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            buckets=tuple(sorted(buckets.items())),
            rows=self.rows + other.rows,
            outliers=self.outliers + other.outliers,
            classes=tuple(sorted(classes.items())[:MAX_CLASSES]),
            drifted=tuple(sorted(set(self.drifted) | set(other.drifted))),
            tested=self.tested or other.tested,
        )


def _model_endpoint(labels: Mapping[str, str]) -> bool:
    return labels.get("endpoint", "").endswith(MODEL_ENDPOINT_SUFFIXES)


def pod_signals(text: str) -> Signals:
    """One pod's Signals from its /metrics text (the service's and BentoML's own series)."""
    requests = errors = rows = outliers = 0.0
    buckets: dict[float, float] = {}
    classes: dict[str, float] = {}
    drifted: set[str] = set()
    tested = False
    for name, labels, value in samples(text):
        if not math.isfinite(value):
            continue
        if name == REQUEST_METRIC and _model_endpoint(labels):
            requests += value
            if labels.get("http_response_code", "").startswith("5"):
                errors += value
        elif name == DURATION_BUCKET_METRIC and _model_endpoint(labels):
            bound = float(labels.get("le", "nan"))
            if not math.isnan(bound):
                buckets[bound] = buckets.get(bound, 0.0) + value
        elif name == "modelops_rows_total":
            rows += value
        elif name == "modelops_outliers_total":
            outliers += value
        elif name == "modelops_predictions_total" and "class" in labels:
            if labels["class"] in classes or len(classes) < MAX_CLASSES:
                classes[labels["class"]] = classes.get(labels["class"], 0.0) + value
        elif labels.get("scope") == WINDOW and name == "modelops_drift_p_value":
            tested = True
        elif labels.get("scope") == WINDOW and name == "modelops_drift_feature_detected" and value >= 1:
            drifted.add(labels.get("feature", ""))
    return Signals(
        pods=1,
        requests=requests,
        errors=errors,
        buckets=tuple(sorted(buckets.items())),
        rows=rows,
        outliers=outliers,
        classes=tuple(sorted(classes.items())),
        drifted=tuple(sorted(f for f in drifted if f)) if tested else (),
        tested=tested,
    )


def combine(signals: Iterable[Signals]) -> Signals:
    total = Signals()
    for s in signals:
        total = total + s
    return total


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly within its bucket (as Prometheus'
    histogram_quantile: the lowest bucket starts at 0, a quantile in the +Inf bucket is the highest
    finite bound); None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def prediction_shift(a: Sequence[tuple[str, float]], b: Sequence[tuple[str, float]]) -> float | None:
    """Total variation distance between two class counts' distributions (0 same, 1 disjoint)."""
    total_a, total_b = sum(c for _, c in a), sum(c for _, c in b)
    if total_a <= 0 or total_b <= 0:
        return None
    shares_a = {k: c / total_a for k, c in a}
    shares_b = {k: c / total_b for k, c in b}
    return 0.5 * sum(abs(shares_a.get(k, 0.0) - shares_b.get(k, 0.0)) for k in set(shares_a) | set(shares_b))


# ------------------------------------------------------------------------------------------ the checks


@dataclass(frozen=True)
class Finding:
    """One check of one analysis: its value against its threshold."""

    check: str
    value: float | str | None
    threshold: float | str
    ok: bool

    def describe(self) -> str:
        value = "n/a" if self.value is None else _figure(self.value)
        return f"{self.check} {value} (threshold {_figure(self.threshold)})"

    def to_status(self) -> dict[str, Any]:
        return {"check": self.check, "value": _figure(self.value), "threshold": _figure(self.threshold)}


def _figure(value: float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:.4g}"


def judge(thresholds: CanaryThresholds, canary: Signals, stable: Signals) -> list[Finding]:
    """Every check the thresholds turn on, on the canary's Signals and (for the relative ones) the stable's.
    A relative check without a stable figure (no stable traffic yet) passes with the value n/a. Drift counts
    only where the stable pods' windows, on the same traffic, do not flag the feature too: drifting
    traffic is not the challenger's fault."""
    t = thresholds
    found: list[Finding] = []

    def at_most(check: str, value: float | None, limit: float | None) -> None:
        if limit is not None:
            found.append(Finding(check, value, limit, value is None or value <= limit))

    at_most("errorRate", canary.error_rate, t.max_error_rate)
    at_most("latencyP99Ms", canary.p99_ms, t.max_latency_p99_ms)
    at_most("outlierRate", canary.outlier_rate, t.max_outlier_rate)
    if t.drift_free:  # the challenger's own drift: features the stable pods' windows do not flag too
        own = tuple(f for f in canary.drifted if f not in stable.drifted)
        found.append(Finding("drift", drift_text(replace(canary, drifted=own)), "none", not own))
    ratio = None
    if canary.p99_ms is not None and stable.p99_ms:
        ratio = canary.p99_ms / stable.p99_ms
    at_most("latencyRatio", ratio, t.max_latency_ratio)
    delta = None
    if canary.outlier_rate is not None and stable.outlier_rate is not None:
        delta = canary.outlier_rate - stable.outlier_rate
    at_most("outlierRateDelta", delta, t.max_outlier_rate_delta)
    at_most("predictionShift", prediction_shift(canary.classes, stable.classes), t.max_prediction_shift)
    return found


def drift_text(signals: Signals) -> str:
    """The drifted features (at most MAX_TEXT characters), 'none', or 'untested'."""
    if not signals.drifted:
        return "none" if signals.tested else "untested"
    text = ", ".join(signals.drifted)
    return text if len(text) <= MAX_TEXT else f"{text[: MAX_TEXT - 20]}... ({len(signals.drifted)} features)"


def analysis_fields(canary: Signals, stable: Signals) -> dict[str, Any]:
    """status.canary.analysis: the measured values, readable (strings keep the status stable and short)."""
    shift = prediction_shift(canary.classes, stable.classes)
    return {
        "requests": int(canary.requests),
        "stableRequests": int(stable.requests),
        "errorRate": _figure(canary.error_rate),
        "latencyP99Ms": _figure(canary.p99_ms),
        "stableLatencyP99Ms": _figure(stable.p99_ms),
        "outlierRate": _figure(canary.outlier_rate),
        "stableOutlierRate": _figure(stable.outlier_rate),
        "predictionShift": _figure(shift),
        "drift": drift_text(canary),
        "pods": f"{canary.pods} canary, {stable.pods} stable",
    }


# ---------------------------------------------------------------------------------- the state machine


def seconds_between(earlier: str | None, later: str) -> float:
    return math.inf if not earlier else (parse_time(later) - parse_time(earlier)).total_seconds()


@dataclass(frozen=True)
class State:
    """status.canary: one challenger's progress (survives operator restarts)."""

    key: str  # the challenger's versions, e.g. wine_quality/8,wine_quality_drift/7,wine_quality_outlier/7
    phase: str = PROGRESSING
    step: int = 0
    started_at: str = ""
    step_started_at: str = ""
    analyzed_at: str | None = None
    failures: int = 0  # consecutive failed analyses
    analysis: Mapping[str, Any] = field(default_factory=dict)
    failed: Mapping[str, Any] | None = None  # the check that failed last: check, value, threshold
    decided_at: str | None = None
    recorded: bool = False  # the decision is in the registry (or needs no record)
    message: str = ""

    @classmethod
    def start(cls, key: str, now: str) -> State:
        return cls(key=key, started_at=now, step_started_at=now, message="canary pods starting")

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> State | None:
        if not raw or not raw.get("key"):
            return None
        return cls(
            key=str(raw["key"]),
            phase=str(raw.get("phase", PROGRESSING)),
            step=int(raw.get("step", 0)),
            started_at=str(raw.get("startedAt", "")),
            step_started_at=str(raw.get("stepStartedAt", "")),
            analyzed_at=raw.get("analyzedAt"),
            failures=int(raw.get("failures", 0)),
            analysis=dict(raw.get("analysis") or {}),
            failed=dict(raw["failed"]) if raw.get("failed") else None,
            decided_at=raw.get("decidedAt"),
            recorded=bool(raw.get("recorded", False)),
            message=str(raw.get("message", "")),
        )

    def to_status(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "phase": self.phase,
            "step": self.step,
            "startedAt": self.started_at,
            "stepStartedAt": self.step_started_at,
            "analyzedAt": self.analyzed_at,
            "failures": self.failures,
            "analysis": dict(self.analysis) or None,
            "failed": dict(self.failed) if self.failed else None,
            "decidedAt": self.decided_at,
            "recorded": self.recorded,
            "message": self.message,
        }


def hold_seconds(canary: Canary, step: int) -> int:
    """How long a step is held: stepSeconds, the last one analysisSeconds."""
    return canary.analysis_seconds if step >= len(schedule(canary)) - 1 else canary.step_seconds


def due(state: State, canary: Canary, now: str) -> bool:
    """Whether an analysis is due (the first one at once)."""
    return state.phase == PROGRESSING and seconds_between(state.analyzed_at, now) >= canary.interval_seconds


def advance(
    state: State,
    canary: Canary,
    measured: tuple[Signals, Signals] | None,
    now: str,
    pods_failing: str | None = None,
    ready_deadline: float = math.inf,
) -> State:
    """The state after one analysis (`measured`: the canary's and the stable pods' Signals; None when no
    canary pod answered; `pods_failing`: a canary pod that cannot start, e.g. a crash loop, which fails the
    analysis whatever the requests; so does no canary pod answering `ready_deadline` seconds after the
    canary started, e.g. pods that cannot be scheduled)."""
    if state.phase != PROGRESSING:
        return state
    weights = schedule(canary)
    where = f"step {state.step + 1}/{len(weights)} ({weights[min(state.step, len(weights) - 1)]} %)"
    analysis: Mapping[str, Any] = dict(state.analysis)
    none_answered = measured is None or measured[0].pods == 0
    waited = seconds_between(state.started_at, now)
    if pods_failing is not None:
        failing = [Finding("podsFailing", pods_failing[:300], "none", False)]
    elif none_answered and waited > ready_deadline:
        failing = [
            Finding("podsReady", f"none after {waited:.0f} s", f"within {ready_deadline:.0f} s", False)
        ]
    elif none_answered or measured is None:
        return replace(state, analyzed_at=now, message=f"{where}: no canary pod answered on /metrics yet")
    else:
        canary_signals, stable_signals = measured
        analysis = analysis_fields(canary_signals, stable_signals)
        if canary_signals.requests < canary.min_requests:
            message = f"{where}: collecting, {int(canary_signals.requests)}/{canary.min_requests} requests"
            return replace(state, analyzed_at=now, analysis=analysis, message=message)
        failing = [f for f in judge(canary.thresholds, canary_signals, stable_signals) if not f.ok]
    if failing:
        failures = state.failures + 1
        failed = failing[0].to_status()
        said = "; ".join(f.describe() for f in failing)
        if failures >= canary.failure_limit:
            return replace(
                state,
                phase=ROLLED_BACK,
                analyzed_at=now,
                failures=failures,
                analysis=analysis,
                failed=failed,
                decided_at=now,
                message=f"rolled back at {where}: {said}",
            )
        message = f"{where}: failed {failures}/{canary.failure_limit}: {said}"
        return replace(
            state, analyzed_at=now, failures=failures, analysis=analysis, failed=failed, message=message
        )
    held = seconds_between(state.step_started_at, now) >= hold_seconds(canary, state.step)
    summary = summary_of(analysis)
    if held and state.step >= len(weights) - 1:
        return replace(
            state,
            phase=PROMOTED,
            analyzed_at=now,
            failures=0,
            analysis=analysis,
            decided_at=now,
            message=f"promoted after {len(weights)} steps: {summary}",
        )
    if held:
        step = state.step + 1
        message = f"step {step + 1}/{len(weights)} ({weights[step]} %): {summary}"
        return replace(
            state,
            step=step,
            step_started_at=now,
            analyzed_at=now,
            failures=0,
            analysis=analysis,
            message=message,
        )
    return replace(state, analyzed_at=now, failures=0, analysis=analysis, message=f"{where}: {summary}")


def summary_of(analysis: Mapping[str, Any]) -> str:
    """E.g. '1,204 req, 0 errors, p99 11 ms, no drift, shift 0.02'."""
    drift = analysis.get("drift", "untested")
    drift_text = (
        "no drift" if drift == "none" else ("drift untested" if drift == "untested" else f"drift: {drift}")
    )
    return (
        f"{int(analysis.get('requests', 0)):,} req, error rate {analysis.get('errorRate', 'n/a')}, "
        f"p99 {analysis.get('latencyP99Ms', 'n/a')} ms, {drift_text}, "
        f"prediction shift {analysis.get('predictionShift', 'n/a')}"
    )


def column(state: State, predictor: str, share: int | None) -> str:
    """The CANARY printer column, e.g. 'wine_quality v8 25 %: 1,204 req, p99 11 ms, no drift'."""
    if state.phase != PROGRESSING:
        return f"{predictor} {state.phase}"
    analysis = state.analysis
    drift = analysis.get("drift", "untested")
    drift_text = "no drift" if drift == "none" else ("drift untested" if drift == "untested" else "drift")
    return (
        f"{predictor} {share} %: {int(analysis.get('requests', 0)):,} req, "
        f"p99 {analysis.get('latencyP99Ms', 'n/a')} ms, {drift_text}"
    )


def transitions(before: State | None, after: State, canary: Canary, label: str) -> list[tuple[str, str, str]]:
    """The Events (type, reason, message) announcing what changed between two states of a canary."""
    weights = schedule(canary)
    if after.phase == PROGRESSING and (before is None or before.key != after.key):
        return [("Normal", "CanaryStarted", f"{label}: canary started at {weights[0]} %")]
    if before is not None and before.key == after.key and before.phase == after.phase:
        if after.phase == PROGRESSING and after.step != before.step:
            return [("Normal", "CanaryStep", f"{label}: {after.message}")]
        return []
    if after.phase == PROMOTED:
        return [("Normal", "CanaryPromoted", f"{label}: {after.message}")]
    if after.phase == ROLLED_BACK:
        return [("Warning", "CanaryRolledBack", f"{label}: {after.message}")]
    return []
