"""Test-wide configuration: each fixture family lives in its own module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.mlflow",
    "tests.fixtures.cluster",
    "tests.fixtures.service",
    "tests.fixtures.image",
    "tests.fixtures.node",
    "tests.fixtures.operator",
    "tests.fixtures.scenario",
]


def pytest_configure(config: object) -> None:
    """SIGTERM (a CI runner's, `timeout`'s) ends the session as Ctrl-C does: fixtures tear down what they
    started (clusters, nodes, servers) instead of leaving it running."""
    from modelops_support.lifecycle import interrupt_on_sigterm

    interrupt_on_sigterm()
