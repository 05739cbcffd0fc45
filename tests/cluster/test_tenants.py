"""Trust between tenants, played as the hostile tenant: ModelDeployments in one namespace point at a
registry that drips, streams an endless body or redirects elsewhere with the namespace's token; the
operator (all namespaces, default settings) keeps serving another namespace on time, stays small, never
restarts, names every hostile resource's problem in its status and never sends the token elsewhere."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from modelops_cluster import Cluster
from modelops_support.local_operator import LocalOperator
from modelops_support.waiting import wait_for
from tests.fixtures.cluster import fresh_namespace
from tests.fixtures.hostile import hostile_server
from tests.fixtures.operator import World, condition, get_mdep, module_operator

pytestmark = pytest.mark.cluster

logger = logging.getLogger(__name__)
TOKEN = "tenant-a-token-must-stay-home"
HOSTILE = {"drip": 4, "endless": 4, "redirect": 2}
GOOD = 5


@pytest.fixture(scope="module")
def operator(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOperator]:
    # A 4 s total deadline per registry call (default 10 s): the dripping registry is cut sooner, the
    # test's waits shorter; what is tested (its own resources only delayed) does not depend on the length.
    timeout = {"MODELOPS_REGISTRY_TIMEOUT_SECONDS": "4"}
    yield from module_operator(kubeconfig, tmp_path_factory.mktemp("operator"), **timeout)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def apply_good(world: World, namespace: str, prefix: str) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(GOOD)]
    for name in names:
        doc = world.manifest(name, world.fresh_versions(), stage=None, promotion=None)
        del doc["spec"]["stage"], doc["spec"]["promotion"]
        doc["metadata"]["namespace"] = namespace
        world.apply_in(namespace, doc)
    return names


def all_ready(api: client.ApiClient, namespace: str, names: list[str]) -> bool:
    return all((condition(get_mdep(api, namespace, n), "Ready") or {}).get("status") == "True" for n in names)


def test_a_hostile_registry_delays_only_its_own_resources(
    world: World, operator: LocalOperator, cluster: Cluster
) -> None:
    api, hostile_ns = world.api, world.namespace
    pid = operator.pid
    with (
        fresh_namespace(cluster) as good_ns,
        hostile_server() as registry,
        hostile_server("127.0.0.2") as other,
    ):
        registry.redirect_to = other.url
        # Without hostile neighbours: the figure to compare with.
        started = time.monotonic()
        quiet = apply_good(world, good_ns, "quiet")
        wait_for(lambda: all_ready(api, good_ns, quiet), 120, 0.5, "good resources Ready (no hostile ones)")
        alone = time.monotonic() - started

        secret = {"MLFLOW_TRACKING_TOKEN": base64.b64encode(TOKEN.encode()).decode()}
        client.CoreV1Api(api).create_namespaced_secret(
            hostile_ns, {"metadata": {"name": "registry-token"}, "data": secret}
        )
        hostile = []
        for kind, count in HOSTILE.items():
            for i in range(count):
                name = f"{kind}-{i}"
                doc = world.manifest(name, world.fresh_versions())
                doc["spec"]["registry"] = {
                    "trackingUri": f"{registry.url}/{kind}",
                    "credentialsSecret": {"name": "registry-token"},
                }
                world.apply(doc)
                hostile.append((kind, name))
        started = time.monotonic()
        crowded = apply_good(world, good_ns, "crowded")
        wait_for(
            lambda: all_ready(api, good_ns, crowded), 120, 0.5, "good resources Ready beside hostile ones"
        )
        beside = time.monotonic() - started

        def named(kind: str, name: str) -> bool:
            resolved = condition(get_mdep(api, hostile_ns, name), "ModelsResolved") or {}
            expected = {
                "drip": ("RegistryUnreachable", "no whole answer in time"),
                "endless": ("RegistryMisbehaving", "answer too large"),
                "redirect": ("RegistryMisbehaving", "redirected elsewhere"),
            }[kind]
            return resolved.get("reason") == expected[0] and expected[1] in resolved.get("message", "")

        wait_for(
            lambda: all(named(k, n) for k, n in hostile), 120, 1.0, "every hostile resource's problem named"
        )
        for _, name in hostile:
            message = condition(get_mdep(api, hostile_ns, name), "Ready")["message"]
            assert len(message) < 300
            assert TOKEN not in message
        assert other.authorizations == []  # the token never crossed to the other origin
        assert operator.pid == pid  # never restarted
        assert operator.alive()
        rss = rss_mib(pid)
    # The figures (see them with -o log_cli=true); the bounds are the waits above, not timings.
    logger.warning(
        "good resources Ready: %.1f s alone, %.1f s beside %d hostile; operator RSS %.0f MiB",
        alone,
        beside,
        sum(HOSTILE.values()),
        rss,
    )
    assert rss < 256, f"operator RSS {rss:.0f} MiB (the chart's limit is 256 Mi)"


def test_a_tenant_cannot_mint_the_staging_record_from_its_spec(world: World) -> None:
    """The attack of the trust issue, replayed: `verification: {environment: staging, soakSeconds: 0,
    requireDriftFree: false}` on an operator with its default policy. Serving is Ready; nothing is
    recorded on the versions, and Verified says why."""
    api, namespace, registry = world.api, world.namespace, world.registry
    versions = world.fresh_versions()
    soak = {"environment": "staging", "soakSeconds": 0, "requireDriftFree": False}
    world.apply(world.manifest("minted", versions, verification=soak))
    world.wait("minted", "Ready")
    verified = world.wait("minted", "Verified", status="False")
    assert condition(verified, "Verified")["reason"] == "NotPermitted"
    for role, version in versions.items():
        name = world.trained["models"][role]["name"]
        tags = registry.get_model_version(name, version).tags
        assert not any(key.startswith("modelops.verified.") for key in tags), (role, tags)
    assert (get_mdep(api, namespace, "minted").get("status") or {}).get("verification") is None
