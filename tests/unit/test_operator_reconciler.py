"""Pure parts of the reconcile recipe: the alias poll interval, moved roles, the recorded resolution."""

from typing import Any

import pytest

from modelops_operator.reconciler import (
    ALIAS_POLL_ENV,
    DEFAULT_ALIAS_POLL_SECONDS,
    alias_poll_seconds,
    cached_resolution,
    moved_roles,
)
from modelops_operator.registry import ResolvedModel


def model(version: str, name: str = "wine_quality") -> ResolvedModel:
    return ResolvedModel(name=name, version=version, run_id="r", source="s", alias="champion")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DEFAULT_ALIAS_POLL_SECONDS),
        ({ALIAS_POLL_ENV: ""}, DEFAULT_ALIAS_POLL_SECONDS),
        ({ALIAS_POLL_ENV: "2"}, 2.0),
        ({ALIAS_POLL_ENV: " 0.5 "}, 0.5),
        ({ALIAS_POLL_ENV: "300"}, 300.0),
    ],
)
def test_alias_poll_seconds(environ: dict[str, str], expected: float) -> None:
    assert alias_poll_seconds(environ) == expected


@pytest.mark.parametrize("raw", ["0", "-5", "soon", "nan", "inf"])
def test_alias_poll_seconds_refuses_nonsense(raw: str) -> None:
    with pytest.raises(ValueError, match=ALIAS_POLL_ENV):
        alias_poll_seconds({ALIAS_POLL_ENV: raw})


@pytest.mark.parametrize(
    ("recorded", "current", "expected"),
    [
        ({"predictor": "3", "drift": "3"}, {"predictor": "3"}, []),
        ({"predictor": "3", "drift": "3"}, {"predictor": "4"}, ["predictor"]),
        ({"predictor": "3", "drift": "3"}, {"predictor": "4", "drift": "2"}, ["predictor", "drift"]),
        ({"predictor": "3"}, {"drift": "1"}, ["drift"]),
        ({}, {}, []),
    ],
)
def test_moved_roles(recorded: dict[str, str], current: dict[str, str], expected: list[str]) -> None:
    assert (
        moved_roles({r: model(v) for r, v in recorded.items()}, {r: model(v) for r, v in current.items()})
        == expected
    )


def body(generation: int, resolved_generation: int | None, roles: tuple[str, ...]) -> dict[str, Any]:
    entry = {"name": "m", "version": "7", "runId": "r", "source": "s", "alias": "champion"}
    status: dict[str, Any] = {"models": {role: dict(entry) for role in roles}}
    if resolved_generation is not None:
        status["resolvedGeneration"] = resolved_generation
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("generation", "resolved_generation", "roles", "found"),
    [
        (2, 2, ("predictor", "drift", "outlier"), True),
        (3, 2, ("predictor", "drift", "outlier"), False),  # the spec changed since: not the current one
        (2, None, ("predictor", "drift", "outlier"), False),
        (2, 2, ("predictor", "drift"), False),
    ],
)
def test_cached_resolution_only_for_the_current_generation(
    generation: int, resolved_generation: int | None, roles: tuple[str, ...], found: bool
) -> None:
    resolution = cached_resolution(body(generation, resolved_generation, roles))
    assert (resolution is not None) is found
    if resolution is not None:
        assert resolution.models["predictor"].version == "7"
        assert resolution.models["predictor"].alias == "champion"
