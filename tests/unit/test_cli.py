"""`modelops promote` and `modelops validate`: manifest edits, record choice, schema checks (no servers)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
import yaml

from modelops_cli.manifests import ManifestError, pin_versions
from modelops_cli.promote import NothingVerified, latest_verified
from modelops_cli.validate import problems

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PINS = {
    "predictor": ("wine_quality", "7"),
    "drift": ("wine_quality_drift", "6"),
    "outlier": ("wine_quality_outliers", "7"),
}


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("example", ["wine-quality-production.yaml", "wine-quality-staging.yaml"])
def test_pinning_changes_the_three_model_lines_only(example: str) -> None:
    before = (EXAMPLES / example).read_text()
    after = pin_versions(before, PINS)
    changed = changed_lines(before, after)
    assert len(changed) == 6, changed  # three lines out, three in; comments and flow style untouched
    assert '+    predictor: {name: wine_quality, version: "7"}' in changed
    assert '+    drift: {name: wine_quality_drift, version: "6"}' in changed
    spec = yaml.safe_load(after)["spec"]
    assert spec["models"]["outlier"] == {"name": "wine_quality_outliers", "version": "7"}


def test_block_style_and_comments_are_kept() -> None:
    before = (
        "# head\nkind: ModelDeployment\nspec:\n  models:\n    predictor:\n      name: wine_quality  # clf\n"
        "      alias: champion # moves\n    drift:\n      name: wine_quality_drift\n      version: '2'\n"
        "    outlier: {name: wine_quality_outliers, version: 2}\n"
    )
    after = pin_versions(before, PINS)
    assert '      version: "7" # moves\n' in after
    assert '      version: "6"\n' in after
    assert 'outlier: {name: wine_quality_outliers, version: "7"}' in after
    assert after.startswith("# head\n")
    assert len(changed_lines(before, after)) == 6


def test_a_record_for_another_model_name_is_refused() -> None:
    before = (EXAMPLES / "wine-quality-production.yaml").read_text()
    with pytest.raises(ManifestError, match="the record names 'other'"):
        pin_versions(before, {**PINS, "drift": ("other", "1")})


def version(number: int, record: dict | None) -> dict:
    tags = [] if record is None else [{"key": "modelops.verified.staging", "value": json.dumps(record)}]
    return {"name": "wine_quality", "version": str(number), "tags": tags}


def record(n: int, drift: int) -> dict:
    models = {
        "predictor": f"wine_quality/{n}",
        "drift": f"wine_quality_drift/{drift}",
        "outlier": f"wine_quality_outliers/{n}",
    }
    return {"environment": "staging", "resource": "ml/wine", "models": models, "from": "a", "to": "b"}


def test_the_newest_verified_version_and_its_companions_are_chosen() -> None:
    versions = [version(8, None), version(7, record(7, 6)), version(5, record(5, 5))]
    chosen = latest_verified(versions, "wine_quality", "staging")
    assert chosen.versions == PINS
    assert latest_verified(versions, "wine_quality", "staging", version="5").versions["drift"] == (
        "wine_quality_drift",
        "5",
    )
    with pytest.raises(NothingVerified):
        latest_verified(versions, "wine_quality", "staging", version="8")
    # A record copied onto another version (it names version 7) does not verify version 9.
    with pytest.raises(NothingVerified):
        latest_verified([version(9, record(7, 6))], "wine_quality", "staging")


def test_validate_accepts_the_examples() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            assert list(problems(document)) == [], path


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        (lambda s: s["models"]["predictor"].update(alias="x"), "exactly one of version or alias"),
        (lambda s: s.update(soakSeconds=5), "'soakSeconds' was unexpected"),
        (lambda s: s["models"]["predictor"].update(version="v1"), "does not match"),
        (lambda s: s.update(gate={"requireVerifiedIn": []}), "should be non-empty"),
        (lambda s: s.update(verification={"environment": "Staging!"}), "does not match"),
        (lambda s: s.update(replicas="2"), "is not of type 'integer'"),
    ],
)
def test_validate_names_what_is_wrong(change, mentions: str) -> None:
    document = yaml.safe_load((EXAMPLES / "wine-quality-staging.yaml").read_text())
    change(document["spec"])
    found = list(problems(document))
    assert any(mentions in p for p in found), found
