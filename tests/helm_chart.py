"""Helm for the chart tests: the binary built by tools/helm/build.sh, and rendering to plain dicts."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "modelops-operator"
BUILD_SCRIPT = REPO_ROOT / "tools" / "helm" / "build.sh"


def build_tool(script: Path, name: str) -> Path:
    """Build a Go tool with its tools/<tool>/build.sh if the cache lacks it (minutes on a cold cache)."""
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=1200, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script.relative_to(REPO_ROOT)} failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1]) / name


def build_helm() -> Path:
    """helm, built from its pinned module."""
    return build_tool(BUILD_SCRIPT, "helm")


def run_helm(helm: Path, args: Sequence[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run helm with its config, cache and data kept under `home` (nothing written to ~)."""
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def values_args(values: dict[str, Any] | None, home: Path) -> list[str]:
    """`-f FILE` for a values override written under `home`."""
    if not values:
        return []
    path = home / f"values-{abs(hash(yaml.safe_dump(values)))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def render(
    helm: Path,
    home: Path,
    values: dict[str, Any] | None = None,
    release: str = "mo",
    namespace: str = "modelops-system",
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """`helm template` of the chart as a list of objects; raises with helm's message on failure."""
    args = ["template", release, str(CHART), "--namespace", namespace, *values_args(values, home)]
    if include_crds:
        args.append("--include-crds")
    result = run_helm(helm, args, home)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class RenderError(Exception):
    """helm template refused the values; the message is helm's."""


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind (and name)."""
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of a kind (and name)."""
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
