"""A real-node run killed with SIGKILL leaves host state behind; the next start removes all of it.

A child process starts the cluster and a pod, then is SIGKILLed: no atexit, no finally. The container's
shim outlives it, the bridge, the guard and the changed sysctls stay. `clear_leftovers`, the first thing a
real node's start does, must then leave nothing: no process of that run, no mount under its directory,
no bridge, no guard table, no KUBE-* chains, the sysctls as they were before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelops_cluster import hostnet
from modelops_cluster.nodeconfig import BRIDGE, containerd_socket
from tests.fixtures.node import require_real_node

pytestmark = pytest.mark.cluster

CHILD = textwrap.dedent(
    """
    import sys, time
    from kubernetes import client
    from modelops_cluster import LocalCluster, wait_for

    cluster = LocalCluster(sys.argv[1], node="real", timeout=180).start()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
           "spec": {"containers": [{"name": "pause", "image": "localhost/modelops-pause:1",
                                    "imagePullPolicy": "Never"}]}}
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod("default", pod)
        wait_for(lambda: core.read_namespaced_pod("sleeper", "default").status.phase == "Running", 120, 0.2,
                 "pod sleeper Running")
    print("READY", flush=True)
    time.sleep(900)
    """
)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_what_a_killed_run_leaves_is_removed_by_the_next_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_real_node()
    before = hostnet.read_sysctls()
    # A short directory: the kubelet's sockets under it must fit a unix socket path (108 bytes), and a test
    # function's own tmp_path (its name in it) did not once pytest's run number reached three digits.
    workdir = tmp_path_factory.mktemp("crashed")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    output = []
    assert child.stdout is not None
    for line in child.stdout:  # ends when the child exits
        output.append(line)
        if line.strip() == "READY" or time.monotonic() > deadline:
            break
    assert output, "the child printed nothing"
    assert output[-1].strip() == "READY", "".join(output[-40:])

    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    # What a dead run leaves: its ledger, its bridge, the shim of its pod's containers.
    assert hostnet.Ledger.load() is not None
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0
    assert processes_mentioning(str(workdir)), "expected the pod's shim to outlive the killed run"

    assert hostnet.clear_leftovers(lambda w: containerd_socket(w / "node"))

    assert processes_mentioning(str(workdir)) == []
    assert hostnet.mounts_under(Path("/proc/self/mountinfo").read_text(), [workdir]) == []
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert hostnet.GUARD_TABLE not in tables
    assert "KUBE-" not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert hostnet.read_sysctls() == before
    assert hostnet.Ledger.load() is None
    assert not list(Path("/sys/fs/cgroup/memory").glob("kubepods*"))
