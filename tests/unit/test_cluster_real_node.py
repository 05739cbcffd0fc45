"""The real node's pure parts: address plan, overlap check, guard, configurations, pause image, clean-up."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from modelops_cluster.hostnet import guard_ruleset, mounts_under, overlaps, without_kube_chains
from modelops_cluster.images import normalized, pause_archive
from modelops_cluster.layout import Layout, Ports
from modelops_cluster.nodeconfig import (
    BRIDGE,
    NodeNetwork,
    NodePaths,
    cni_config,
    containerd_config,
    containerd_socket,
    kube_proxy_config,
    kubelet_config,
)
from modelops_cluster.realnode import cri_serving

LAYOUT = Layout(Path("/tmp/c"), Ports(1, 2, 3, 4, 5, 6))
NETWORK = NodeNetwork.of(LAYOUT)
PATHS = NodePaths.under(Path("/tmp/c/node"), Path("/cache/containerd"))


def test_the_node_takes_the_first_slice_of_the_pod_range() -> None:
    assert (NETWORK.pod_cidr, NETWORK.node_pod_cidr, NETWORK.service_cidr) == (
        "10.244.0.0/16",
        "10.244.0.0/24",
        "10.96.0.0/16",
    )
    assert NETWORK.node_ip == "10.244.0.1"
    assert NETWORK.bridge_address == "10.244.0.1/24"


@pytest.mark.parametrize(
    ("routes", "addresses", "clash"),
    [
        ([{"dst": "default", "dev": "eth0"}, {"dst": "192.0.2.0/24", "dev": "eth0"}], ["192.0.2.2/24"], []),
        ([{"dst": "10.0.0.0/8", "dev": "eth1"}], [], ["route 10.0.0.0/8 dev eth1"]),
        ([{"dst": "10.96.5.0/24", "dev": "tun0"}], [], ["route 10.96.5.0/24 dev tun0"]),
        ([], ["10.244.3.7/16"], ["address 10.244.3.7/16"]),
        ([{"dst": "10.244.0.0/16", "dev": BRIDGE}], ["fd00::2/64"], []),  # our own, and IPv6
        ([{"dst": "127.0.0.0/8", "dev": "lo", "type": "local"}], ["127.0.0.1/8"], []),
    ],
)
def test_overlaps_name_what_is_in_the_way(routes: list, addresses: list, clash: list) -> None:
    assert overlaps(NETWORK.guarded, routes, addresses) == clash


@pytest.mark.parametrize(
    "rule",
    [
        'oifname { "lo", "modelops0" } accept',  # the bridge and loopback carry the ranges
        "ip daddr { 10.244.0.0/16, 10.96.0.0/16 } counter drop",  # nothing else may, either way
        "ip saddr { 10.244.0.0/16, 10.96.0.0/16 } counter drop",
        'iifname "modelops0" oifname != "modelops0" counter drop',  # pods reach nothing off the bridge
    ],
)
def test_the_guard_keeps_the_ranges_on_this_machine(rule: str) -> None:
    assert rule in guard_ruleset(NETWORK)


def test_kube_chains_are_removed_and_nothing_else() -> None:
    saved = "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":KUBE-FORWARD - [0:0]",
            ":MINE - [0:0]",
            "-A FORWARD -j KUBE-FORWARD",
            "-A FORWARD -j MINE",
            "-A KUBE-FORWARD -j ACCEPT",
            "COMMIT",
        ]
    )
    assert without_kube_chains(saved).splitlines() == [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":MINE - [0:0]",
        "-A FORWARD -j MINE",
        "COMMIT",
    ]


def test_mounts_under_the_roots_deepest_first() -> None:
    info = "\n".join(
        [
            "22 1 0:21 / / rw - ext4 /dev/vda rw",
            "30 22 0:40 / /tmp/c/node/containerd/state/x/rootfs rw - overlay overlay rw",
            "31 30 0:41 / /tmp/c/node/containerd/state/x/rootfs/dev/shm rw - tmpfs shm rw",
            "32 22 0:42 / /tmp/cc/other rw - tmpfs t rw",
            r"33 22 0:43 / /tmp/c/node/kubelet/pods/a\040b rw - tmpfs t rw",
        ]
    )
    assert mounts_under(info, [Path("/tmp/c")]) == [
        "/tmp/c/node/containerd/state/x/rootfs/dev/shm",
        "/tmp/c/node/containerd/state/x/rootfs",
        "/tmp/c/node/kubelet/pods/a b",
    ]


@pytest.mark.parametrize(
    "setting",
    [
        "restrict_oom_score_adj = true",  # no CAP_SYS_RESOURCE here
        "SystemdCgroup = false",  # cgroup v1, no systemd
        'root = "/cache/containerd"',  # the kept image store
        'sandbox_image = "localhost/modelops-pause:1"',
    ],
)
def test_containerd_configuration_carries_what_this_host_needs(setting: str) -> None:
    assert setting in containerd_config(PATHS)
    assert 'disabled_plugins = ["io.containerd.grpc.v1.cri"]' in containerd_config(PATHS, cri=False)


def test_node_configurations_carry_what_this_host_needs() -> None:
    kubelet = kubelet_config(PATHS, NETWORK, Path("/tmp/c/pki/ca.crt"), 1234)
    assert (kubelet["cgroupDriver"], kubelet["failCgroupV1"], kubelet["imageGCHighThresholdPercent"]) == (
        "cgroupfs",
        False,
        100,
    )
    assert kubelet["address"] == "10.244.0.1"
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{containerd_socket(Path('/tmp/c/node'))}"
    assert len(str(containerd_socket(Path("/tmp/" + "x" * 200)))) < 100  # unix socket paths are short
    proxy = kube_proxy_config(LAYOUT, PATHS, NETWORK, (1, 2))
    assert proxy["nodePortAddresses"] == ["10.244.0.1/32"]
    assert proxy["conntrack"]["maxPerCore"] == 0
    bridge = cni_config(PATHS, NETWORK)["plugins"][0]
    # No default route in the pods: only the cluster's own ranges.
    assert bridge["ipam"]["routes"] == [{"dst": "10.244.0.0/16"}, {"dst": "10.96.0.0/16"}]
    assert (bridge["bridge"], bridge["ipMasq"], bridge["ipam"]["ranges"][0][0]["gateway"]) == (
        BRIDGE,
        False,
        "10.244.0.1",
    )


def member(archive: tarfile.TarFile, name: str) -> bytes:
    found = archive.extractfile(name)
    assert found is not None
    return found.read()


def test_pause_archive_is_an_oci_layout_named_for_containerd() -> None:
    data = pause_archive(b"\x7fELF-binary", "localhost/modelops-pause:1")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        index = json.loads(member(archive, "index.json"))
        entry = index["manifests"][0]
        manifest = json.loads(member(archive, f"blobs/sha256/{entry['digest'][7:]}"))
        layer = member(archive, f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}")
    assert names[:2] == ["oci-layout", "index.json"]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/modelops-pause:1"
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        assert inner.getmember("pause").mode == 0o755
        assert member(inner, "pause") == b"\x7fELF-binary"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("modelops/modelops-service:0.1.0", "docker.io/modelops/modelops-service:0.1.0"),
        ("busybox:1", "docker.io/library/busybox:1"),
        ("localhost/modelops-pause:1", "localhost/modelops-pause:1"),
        ("registry.example:5000/a/b:2", "registry.example:5000/a/b:2"),
    ],
)
def test_image_names_as_the_cri_looks_them_up(ref: str, expected: str) -> None:
    assert normalized(ref) == expected


def test_the_cri_serves_only_once_this_runs_containerd_says_so(tmp_path: Path) -> None:
    """A log that keeps an earlier run's lines: only what this run wrote (from its offset) counts."""
    log = tmp_path / "containerd.log"
    assert not cri_serving(log, 0)  # no log yet
    earlier = b'time="..." level=info msg="Start streaming server"\n'
    log.write_bytes(earlier + b'time="..." level=info msg="containerd successfully booted in 0.04s"\n')
    assert cri_serving(log, 0)
    assert not cri_serving(log, len(earlier))  # this run: booted, CRI still recovering
    with open(log, "ab") as f:
        f.write(b'time="..." level=info msg="Start streaming server"\n')
    assert cri_serving(log, len(earlier))
