"""The registry client's pure parts: credentials, auth, error mapping, training-run consistency."""

import base64

import pytest

from modelops_operator.registry import (
    Credentials,
    ModelNotFound,
    RegistryClient,
    RegistryUnauthorized,
    RegistryUnreachable,
    ResolvedModel,
    TtlCache,
    _http_error,
    auth_headers,
    base_url,
    consistency_warning,
)


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_credentials_from_secret_ignore_other_keys_and_hide_values() -> None:
    creds = Credentials.from_secret_data(
        {"MLFLOW_TRACKING_TOKEN": b64("s3cret"), "OTHER": b64("x"), "MLFLOW_TRACKING_USERNAME": b64("u")}
    )
    assert creds.token == "s3cret"
    assert creds.username == "u"
    assert "s3cret" not in repr(creds)


@pytest.mark.parametrize(
    ("creds", "header"),
    [
        (Credentials(), None),
        (Credentials(token="t"), "Bearer t"),
        (Credentials(username="u", password="p"), "Basic " + b64("u:p")),
        (Credentials(databricks_host="https://h", databricks_token="d"), "Bearer d"),
    ],
)
def test_auth_headers(creds: Credentials, header: str | None) -> None:
    assert auth_headers(creds).get("Authorization") == header


def test_base_url() -> None:
    assert base_url("http://mlflow:5000/", Credentials()) == "http://mlflow:5000"
    assert base_url("databricks", Credentials(databricks_host="https://x.cloud/")) == "https://x.cloud"
    with pytest.raises(RegistryUnauthorized):
        base_url("databricks", Credentials())


@pytest.mark.parametrize(
    ("code", "body", "error", "permanent"),
    [
        (404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "nope"}', ModelNotFound, True),
        (400, b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}', ModelNotFound, True),
        (401, b"", RegistryUnauthorized, True),
        (403, b"Invalid Host header", RegistryUnauthorized, True),
        (503, b"", RegistryUnreachable, False),
        (429, b"", RegistryUnreachable, False),
    ],
)
def test_http_errors_map_to_kinds(code: int, body: bytes, error: type, permanent: bool) -> None:
    mapped = _http_error("model-versions/get", code, body)
    assert type(mapped) is error
    assert mapped.permanent is permanent


@pytest.mark.parametrize(
    ("runs", "warns"),
    [
        ({"predictor": "a", "drift": "a", "outlier": "a"}, False),
        ({"predictor": "a", "drift": "b", "outlier": "a"}, True),
        ({"predictor": "", "drift": "", "outlier": ""}, True),
    ],
)
def test_consistency_warning(runs: dict, warns: bool) -> None:
    warning = consistency_warning(runs)
    assert (warning is not None) is warns
    if warning:
        assert "drift=" in warning


def test_resolved_model_status_round_trip() -> None:
    m = ResolvedModel(name="wine_quality", version="3", run_id="r", source="s", alias="champion")
    entry = m.to_status()
    assert entry["uri"] == "models:/wine_quality/3"
    assert ResolvedModel.from_status(entry) == m


def test_ttl_cache_expires_and_bounds() -> None:
    now = [100.0]
    cache = TtlCache(clock=lambda: now[0], max_entries=2)
    cache.put(("a",), {"v": 1}, ttl=5)
    assert cache.get(("a",)) == {"v": 1}
    now[0] += 5
    assert cache.get(("a",)) is None
    cache.put(("a",), {"v": 1}, ttl=5)
    cache.put(("b",), {"v": 2}, ttl=5)
    cache.put(("c",), {"v": 3}, ttl=5)  # over the bound: starts afresh
    assert cache.get(("a",)) is None
    assert cache.get(("c",)) == {"v": 3}


def test_clients_share_answers_only_with_the_same_credentials() -> None:
    a = RegistryClient("http://m:5000", Credentials(token="t1"))
    b = RegistryClient("http://m:5000/", Credentials(token="t1"))
    c = RegistryClient("http://m:5000", Credentials(token="t2"))
    assert a.identity == b.identity
    assert a.identity != c.identity
    assert "t1" not in "".join(a.identity)


@pytest.mark.parametrize(
    ("root", "hosts", "ok"),
    [
        ("http://mlflow.ml.svc:5000", frozenset(), True),
        ("http://mlflow.ml.svc:5000", frozenset({"mlflow.ml.svc"}), True),
        ("http://mlflow.ml.svc:5000", frozenset({"mlflow.ml.svc:5000"}), True),
        ("http://mlflow.ml.svc:5001", frozenset({"mlflow.ml.svc:5000"}), False),
        ("http://169.254.169.254", frozenset({"mlflow.ml.svc"}), False),
        ("http://MLFLOW.ml.svc", frozenset({"mlflow.ml.svc"}), True),
    ],
)
def test_registry_hosts_allowlist(root: str, hosts: frozenset[str], ok: bool) -> None:
    from modelops_operator.registry_access import allowed

    assert allowed(root, hosts) is ok


def test_a_secret_value_that_is_not_text_is_a_registry_error() -> None:
    from modelops_operator.registry import CredentialsInvalid

    with pytest.raises(CredentialsInvalid):
        Credentials.from_secret_data({"MLFLOW_TRACKING_TOKEN": base64.b64encode(b"\xff\xfe").decode()})


def test_writes_use_the_operators_own_secret_for_its_registry_host() -> None:
    """The pods get the ModelDeployment's Secret (it may be read-only); records, stages and aliases are
    written with the Secret the operator keeps in its own namespace for that registry host."""
    from modelops_operator.registry_access import RegistryAccess
    from modelops_operator.settings import OperatorSettings
    from modelops_operator.spec import Registry
    from tests.fixtures.kube import MemoryKube

    def secret(name: str, token: str) -> dict:
        data = {"MLFLOW_TRACKING_TOKEN": base64.b64encode(token.encode()).decode()}
        return {"metadata": {"name": name}, "data": data}

    kube = MemoryKube().add("Secret", secret("pods-read-only", "reader"), secret("modelops-writer", "writer"))
    settings = OperatorSettings.load(
        {
            "MODELOPS_OPERATOR_NAMESPACE": "modelops",
            "MODELOPS_REGISTRY_WRITE_SECRETS": "mlflow.ml.svc:5000=modelops-writer",
        }
    )
    access = RegistryAccess(kube, "team-a", Registry("http://mlflow.ml.svc:5000", "pods-read-only"), settings)
    assert access.client().credentials.token == "reader"
    assert access.writer().credentials.token == "writer"
    other = RegistryAccess(kube, "team-a", Registry("http://other:5000", "pods-read-only"), settings)
    assert other.writer().credentials.token == "reader"  # no operator Secret for that host: the spec's
    with pytest.raises(Exception, match="MODELOPS_OPERATOR_NAMESPACE"):
        OperatorSettings.load({"MODELOPS_REGISTRY_WRITE_SECRETS": "mlflow=modelops-writer"})
