"""The step contract of the reconcile recipe: a Pass in, a Step out, one Outcome from the steps' checks.

A Pass is what one reconcile knows before it starts (the resource, its parsed spec, how it was
triggered, the Kubernetes edge, the pass's registry access). Every step takes the Pass (and what earlier
steps produced) and returns a Step: the Check of the status detail it reports, the data later steps
need, and the status fields it sets. `Report.add` collects them; `Outcome.of` turns checks into what the
handler does next. reconciler.py is the recipe that names the steps in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from modelops_operator import status as st
from modelops_operator.kube import Kube
from modelops_operator.registry_access import RegistryAccess
from modelops_operator.settings import OperatorSettings
from modelops_operator.spec import DeploymentSpec, parse_spec

T = TypeVar("T")


@dataclass(frozen=True)
class Pass:
    """One reconcile of one ModelDeployment, as it starts (parse_spec raises SpecError in `start`)."""

    kube: Kube
    body: Mapping[str, Any]
    spec: DeploymentSpec
    registry: RegistryAccess
    settings: OperatorSettings
    fresh: bool  # re-resolve the models in the registry (a spec change, a moved alias, the gate's poll)
    new: bool  # the resource was just created: its children are created without looking first
    observed: Mapping[str, Mapping[str, Any]]  # live children the caller already has, by kind

    @classmethod
    def start(
        cls,
        kube: Kube,
        body: Mapping[str, Any],
        settings: OperatorSettings,
        fresh: bool,
        new: bool = False,
        observed: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Pass:
        """The pass over `body`; raises SpecError when the spec can never work."""
        spec = parse_spec(body.get("spec") or {})
        registry = RegistryAccess(kube, body["metadata"]["namespace"], spec.registry, settings)
        return cls(kube, body, spec, registry, settings, fresh, new, observed or {})

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation", 0))

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def look_for_leftovers(self) -> bool:
        """Whether a child the spec no longer wants may exist (after a spec change of an old resource)."""
        return self.fresh and not self.new


@dataclass(frozen=True)
class Step(Generic[T]):
    """What a step found: the Check of its status detail (None: it reports none), its data, its fields."""

    detail: str | None
    check: st.Check
    value: T | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Event:
    """An Event to post on the ModelDeployment once the pass's status is written."""

    kind: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Report:
    """The details and status fields one pass gathers (reconciler.report_status writes them)."""

    details: dict[str, st.Check] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    ready_message: str = ""
    events: list[Event] = field(default_factory=list)

    def add(self, step: Step[T]) -> Step[T]:
        """Record a step's detail, fields and events; returns the step."""
        if step.detail is not None:
            self.details[step.detail] = step.check
        self.fields.update(step.fields)
        self.events.extend(step.events)
        return step

    def serving(self) -> st.Check:
        """The first gating detail that is not ok, or a passed Ready: whether the rollout serves well."""
        gating = [
            self.details[t] for t in st.DETAIL_TYPES if t in self.details and t not in st.NON_GATING_TYPES
        ]
        return next((c for c in gating if not c.ok), st.Check.passed("Ready", "ready"))


@dataclass(frozen=True)
class Outcome:
    """What the caller does next: `done`; `retry` after `delay` seconds (None: the caller's backoff,
    growing with each retry); or `stall` until the spec (or the cluster's RBAC) changes."""

    action: Literal["done", "retry", "stall"]
    reason: str
    message: str = ""
    delay: float | None = None

    @classmethod
    def done(cls, reason: str) -> Outcome:
        """Converged, or converging by itself (a rollout in progress: child events bring the next pass)."""
        return cls("done", reason)

    @classmethod
    def retry(cls, reason: str, message: str, delay: float | None = None) -> Outcome:
        """Something temporary failed: try again later."""
        return cls("retry", reason, message, delay)

    @classmethod
    def stall(cls, reason: str, message: str) -> Outcome:
        """Cannot progress without a change by a person."""
        return cls("stall", reason, message)

    @classmethod
    def failed(cls, reason: str, message: str, permanent: bool) -> Outcome:
        """A classified error (KubeError, RegistryError): stall when permanent, else retry with backoff."""
        return cls.stall(reason, message) if permanent else cls.retry(reason, message)

    @classmethod
    def of(cls, *checks: st.Check) -> Outcome:
        """The first check that is stuck or to be retried decides; otherwise done, with the last one's
        reason (a check that waits for an event or a timer needs nothing from the caller)."""
        for check in checks:
            if check.stalled:
                return cls.stall(check.reason, check.message)
            if check.retry:
                return cls.retry(check.reason, check.message, check.delay)
        return cls.done(checks[-1].reason)
