"""Choosing between the local control plane and an existing $KUBECONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_cluster import ExistingCluster, LocalCluster, WaitTimeout, choose_cluster
from modelops_cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from modelops_cluster.pki import create_ca, issue_certificate
from modelops_support.ports import free_port


@pytest.mark.parametrize(
    ("use", "kubeconfig", "expected"),
    [
        ("1", "/k/a:/k/b", ExistingCluster),
        ("1", "", LocalCluster),
        ("0", "/k/a", LocalCluster),
        (None, "/k/a", LocalCluster),
    ],
)
def test_choose_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, use: str | None, kubeconfig: str, expected: type
) -> None:
    if use is None:
        monkeypatch.delenv("MODELOPS_USE_KUBECONFIG", raising=False)
    else:
        monkeypatch.setenv("MODELOPS_USE_KUBECONFIG", use)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    chosen = choose_cluster(tmp_path)
    assert isinstance(chosen, expected)
    if isinstance(chosen, ExistingCluster):
        assert chosen.kubeconfig == Path("/k/a")  # the first file of the list
    else:
        assert chosen.kubeconfig == tmp_path / "kubeconfig"


def test_existing_cluster_that_does_not_answer_fails_within_its_timeout(tmp_path: Path) -> None:
    ca, ca_key = create_ca()
    document = build_kubeconfig(
        f"https://127.0.0.1:{free_port()}", ca.cert_pem, issue_certificate(ca, ca_key, "u"), "u"
    )
    path = write_kubeconfig(tmp_path / "kubeconfig", document)
    with pytest.raises(WaitTimeout, match="API server"):
        ExistingCluster(path, timeout=1.0).start()
