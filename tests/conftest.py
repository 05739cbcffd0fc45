"""Test-wide configuration: each fixture family lives in its own module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.mlflow",
    "tests.fixtures.cluster",
    "tests.fixtures.service",
    "tests.fixtures.image",
    "tests.fixtures.node",
]
