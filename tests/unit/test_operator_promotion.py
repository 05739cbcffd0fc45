"""Registry write-back's pure parts."""

import json

from modelops_operator.promotion import deployment_tags, promotion_requested, sync_key
from modelops_operator.registry import ResolvedModel
from modelops_operator.spec import parse_spec

RAW = {
    "registry": {"trackingUri": "http://m"},
    "models": {r: {"name": r, "version": "1"} for r in ("predictor", "drift", "outlier")},
    "image": {"reference": "img"},
    "stage": "Staging",
    "promotion": {"alias": "staging"},
}


def models(v: str) -> dict[str, ResolvedModel]:
    return {
        r: ResolvedModel(name=r, version=v, run_id="x", source="s") for r in ("predictor", "drift", "outlier")
    }


def test_sync_key_changes_with_what_is_recorded() -> None:
    spec = parse_spec(RAW)
    key = sync_key("ns", "a", spec, models("1"))
    assert key == sync_key("ns", "a", spec, models("1"))
    assert key != sync_key("ns", "a", spec, models("2"))
    assert key != sync_key("ns", "b", spec, models("1"))
    assert key != sync_key("ns", "a", parse_spec({**RAW, "stage": "Production"}), models("1"))


def test_promotion_requested() -> None:
    assert promotion_requested(parse_spec(RAW))
    assert not promotion_requested(
        parse_spec({k: v for k, v in RAW.items() if k not in ("stage", "promotion")})
    )


def test_deployment_tags() -> None:
    tags = deployment_tags("ns", "wine", parse_spec(RAW), "img", "http://u", "T")
    assert tags["modelops.deployed_at"] == "T"
    record = json.loads(tags["modelops.deployment.ns.wine"])
    assert record == {
        "namespace": "ns",
        "name": "wine",
        "stage": "Staging",
        "image": "img",
        "url": "http://u",
        "deployedAt": "T",
    }
