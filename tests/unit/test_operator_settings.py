"""OperatorSettings: every variable the operator reads, with its default, parsed once; bad values named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelops_operator.settings import (
    ALIAS_POLL_ENV,
    DRIFT_POLL_ENV,
    MAX_BACKOFF_ENV,
    METRICS_URL_ENV,
    REGISTRY_CALLS_PER_HOST_ENV,
    REGISTRY_HOSTS_ENV,
    REGISTRY_MAX_ANSWER_ENV,
    ConfigurationError,
    OperatorSettings,
)


def test_defaults() -> None:
    settings = OperatorSettings.load({})
    assert settings == OperatorSettings()
    assert (settings.alias_poll_seconds, settings.drift_poll_seconds, settings.max_backoff_seconds) == (
        60,
        60,
        60,
    )
    assert settings.metrics_url_template == "http://{address}:{port}/metrics"


def test_values_are_read() -> None:
    settings = OperatorSettings.load(
        {
            ALIAS_POLL_ENV: " 0.5 ",
            DRIFT_POLL_ENV: "0",
            METRICS_URL_ENV: "http://127.0.0.1:8000/{namespace}/{pod}",
            MAX_BACKOFF_ENV: "300",
        }
    )
    assert settings.alias_poll_seconds == 0.5
    assert settings.drift_poll_seconds == 0  # 0 turns the drift status off
    assert settings.metrics_url_template == "http://127.0.0.1:8000/{namespace}/{pod}"
    assert [settings.backoff(n) for n in (0, 1, 2, 7, 8, 1000)] == [2, 4, 8, 256, 300, 300]


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (ALIAS_POLL_ENV, "0", "> 0"),
        (ALIAS_POLL_ENV, "soon", "> 0"),
        (ALIAS_POLL_ENV, "inf", "> 0"),
        (DRIFT_POLL_ENV, "-1", ">= 0"),
        (DRIFT_POLL_ENV, "nan", ">= 0"),
        (MAX_BACKOFF_ENV, "-5", "> 0"),
        (METRICS_URL_ENV, "http://{host}/metrics", "not a valid template"),
        (METRICS_URL_ENV, "file:///etc/passwd", "http"),
        (REGISTRY_CALLS_PER_HOST_ENV, "0", "> 0"),
        (REGISTRY_MAX_ANSWER_ENV, "1e6", "> 0"),
        (REGISTRY_HOSTS_ENV, "mlflow:5000, http://evil/", "host or host:port"),
        ("MODELOPS_INGRESS_CONTROLLER", "nginx", "one of"),
        ("MODELOPS_PLAIN_HTTP_IMAGE_REGISTRIES", "http://10.0.0.1:5000", "host or host:port"),
    ],
)
def test_a_bad_value_is_named(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as refused:
        OperatorSettings.load({name: raw})
    assert name in str(refused.value)


def test_a_bad_value_stops_start_up_with_one_clear_line() -> None:
    env = {ALIAS_POLL_ENV: "soon", "PATH": "/usr/bin:/bin"}
    # kopf runs the start-up handler, which loads the settings, before it connects to any API server.
    kopf = [sys.executable, "-m", "kopf", "run", "-m", "modelops_operator.handlers", "--standalone", "-A"]
    done = subprocess.run(
        kopf,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"modelops-operator: not starting: {ALIAS_POLL_ENV} must be a number of seconds > 0, not 'soon'"
    )


def test_every_timer_takes_its_interval_from_a_setting() -> None:
    from modelops_operator.handlers import TIMERS

    settings = OperatorSettings()
    assert len({t.id for t in TIMERS}) == len(TIMERS)
    for timer in TIMERS:
        assert isinstance(getattr(settings, timer.interval), float), timer.id


def test_registry_hosts_are_a_lower_cased_set() -> None:
    settings = OperatorSettings.load({REGISTRY_HOSTS_ENV: "MLflow.mlflow.svc:5000, registry.example"})
    assert settings.registry_hosts == {"mlflow.mlflow.svc:5000", "registry.example"}
    assert OperatorSettings.load({}).registry_hosts == frozenset()


def test_verification_policy_records_nothing_until_configured() -> None:
    from modelops_operator.settings import VERIFICATION_NAMESPACES_ENV

    assert not OperatorSettings().may_record("staging", "ml")
    policy = OperatorSettings.load({VERIFICATION_NAMESPACES_ENV: "staging=ml-staging, team-b; qa=*"})
    assert policy.may_record("staging", "ml-staging")
    assert policy.may_record("staging", "team-b")
    assert not policy.may_record("staging", "team-c")
    assert not policy.may_record("production", "ml-staging")
    assert policy.may_record("qa", "anything")
    with pytest.raises(ConfigurationError, match=VERIFICATION_NAMESPACES_ENV):
        OperatorSettings.load({VERIFICATION_NAMESPACES_ENV: "staging"})
