"""The GitHub Actions workflows, checked offline with actionlint (built from its Go module) and shellcheck
(Debian), and the promotion pipeline's steps checked to be the ones this repository tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helm_chart import REPO_ROOT, build_tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return build_tool(REPO_ROOT / "tools" / "actionlint" / "build.sh", "actionlint")


def test_workflows_pass_actionlint_with_shellcheck(actionlint: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (make node-tools installs it)"
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert files
    done = subprocess.run(
        [str(actionlint), "-shellcheck", shellcheck, *map(str, files)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    """The check can fail: an unknown job in needs and an undefined expression are reported."""
    broken = (WORKFLOWS / "deliver.yml").read_text().replace("needs: staging", "needs: stagign")
    broken = broken.replace("${{ vars.IMAGE_REPOSITORY }}", "${{ var.IMAGE_REPOSITORY }}")
    path = tmp_path / "broken.yml"
    path.write_text(broken)
    done = subprocess.run([str(actionlint), "-shellcheck=", str(path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "stagign" in done.stdout
    assert "var" in done.stdout


def test_the_pipeline_runs_only_tested_steps() -> None:
    """Each run step calls a make target that exists, `modelops promote`, kubectl wait, or plumbing."""
    workflow = yaml.safe_load((WORKFLOWS / "deliver.yml").read_text())
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    jobs = workflow["jobs"]
    assert jobs["production"]["environment"] == "Production"
    assert jobs["production"]["needs"] == "staging"
    commands = [
        line.strip()
        for job in jobs.values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip()
    ]
    made = {target for line in commands for target in re.findall(r"\bmake ([a-z-]+)", line)}
    assert made <= targets, made - targets
    assert {"validate-manifests", "image", "image-push", "venv"} <= made
    assert any(line.startswith(".venv/bin/modelops promote --from staging") for line in commands)
    assert sum("kubectl wait" in line and "--for=condition=Ready" in line for line in commands) == 2


def test_production_ships_exactly_what_staging_verified_with_pinned_actions() -> None:
    """The staging job hands its versions over (job outputs); production pins them or fails; every action
    is pinned by commit; the write token and the registry token are not in scope while installing."""
    text = (WORKFLOWS / "deliver.yml").read_text()
    workflow = yaml.safe_load(text)
    staging, production = workflow["jobs"]["staging"], workflow["jobs"]["production"]
    assert set(staging["outputs"]) == {"predictor", "drift", "outlier"}
    steps = production["steps"]
    pin = next(s for s in steps if "modelops promote" in s.get("run", ""))
    assert pin["env"]["PREDICTOR"] == "${{ needs.staging.outputs.predictor }}"
    assert '--version "$PREDICTOR"' in pin["run"]
    assert '"$DRIFT $OUTLIER"' in pin["run"]
    install = next(s for s in steps if s.get("run", "").strip() == "make venv")
    assert "env" not in install
    assert steps[0]["with"]["persist-credentials"] is False
    uses = re.findall(r"uses: (\S+)", text)
    assert uses
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
