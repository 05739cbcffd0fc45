"""The Argo CD health check for ModelDeployment, run in a real Lua 5.1 VM against its test table."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

lua51 = pytest.importorskip("lupa.lua51")

REPO_ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATIONS = REPO_ROOT / "integrations" / "argocd" / "resource_customizations"
CHECK_DIR = CUSTOMIZATIONS / "modelops.dev" / "ModelDeployment"
SCRIPT = (CHECK_DIR / "health.lua").read_text()
CASES = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"]

# Argo CD's VM offers the base library plus string, table and math; nothing that reaches the host.
UNSAFE_GLOBALS = ("io", "os", "require", "dofile", "loadfile", "load", "loadstring", "package", "debug")


def to_lua(runtime: Any, value: Any) -> Any:
    """Convert decoded YAML into Lua tables as Argo CD does from JSON (arrays 1-based)."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def run_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run health.lua with `obj` set, as Argo CD does, and return its status table."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    # Argo CD runs the script as a chunk whose `return` is the health table.
    chunk = runtime.compile(SCRIPT)
    lua_globals = runtime.globals()
    for name in UNSAFE_GLOBALS:
        lua_globals[name] = None
    lua_globals.obj = to_lua(runtime, obj)
    result = chunk()
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"] for c in CASES])
def test_health_matches_the_expected_status_and_message(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    assert run_health(obj) == case["healthStatus"]


def test_every_testdata_file_is_in_the_test_table() -> None:
    listed = {c["inputPath"] for c in CASES}
    on_disk = {f"testdata/{p.name}" for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert listed == on_disk


def test_the_table_covers_each_health_status_the_script_returns() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded"}


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ({"metadata": {"generation": 5}}, "Progressing"),
        ({"status": {"observedGeneration": None}}, "Progressing"),
        ({"status": {"conditions": []}}, "Progressing"),
    ],
    ids=["generation-moved-on", "observed-generation-missing", "no-conditions"],
)
def test_a_healthy_resource_stops_being_healthy_when(mutation: dict[str, Any], expected: str) -> None:
    obj = yaml.safe_load((CHECK_DIR / "testdata" / "healthy.yaml").read_text())
    for section, changes in mutation.items():
        for key, value in changes.items():
            if value is None:
                obj[section].pop(key)
            else:
                obj[section][key] = value
    assert run_health(obj)["status"] == expected


def yaml_blocks(markdown: str) -> list[Any]:
    """The ```yaml blocks of a Markdown document, parsed."""
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", markdown, flags=re.DOTALL)]


def test_the_argocd_cm_snippets_carry_the_tested_script() -> None:
    key = "resource.customizations.health.modelops.dev_ModelDeployment"
    patch = yaml.safe_load((REPO_ROOT / "integrations" / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch["data"][key] == SCRIPT
    docs = yaml_blocks((REPO_ROOT / "docs" / "gitops.md").read_text())
    (config_map,) = [d for d in docs if isinstance(d, dict) and d.get("kind") == "ConfigMap"]
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][key] == SCRIPT
