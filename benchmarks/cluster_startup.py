"""Warm start-to-ready time of the local control plane and the RSS of its components at rest.

    .venv/bin/python benchmarks/cluster_startup.py [--runs 3] [--settle 15]

"Ready" is what LocalCluster.start() waits for: every health endpoint answers, the fake Node is Ready and
the default ServiceAccount exists. RSS is VmRSS from /proc/<pid>/status, sampled once a second for
`--settle` seconds after ready; the table shows the last sample ("at rest") and the peak.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from modelops_cluster import LocalCluster
from modelops_cluster.binaries import find_binaries
from modelops_support.waiting import observe


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


def run_once(bin_dir: Path, settle: float) -> tuple[float, float, dict[str, int], dict[str, int]]:
    """(start-to-ready s, stop s, last RSS KiB per component, peak RSS KiB per component)."""
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as workdir:
        cluster = LocalCluster(workdir, bin_dir=bin_dir)
        t0 = time.monotonic()
        cluster.start()
        ready = time.monotonic() - t0
        try:
            peak: dict[str, int] = {}
            last: dict[str, int] = {}
            for last in observe(lambda: {name: rss_kib(pid) for name, pid in cluster.pids().items()}, settle):
                peak = {name: max(peak.get(name, 0), kib) for name, kib in last.items()}
        finally:
            t1 = time.monotonic()
            cluster.stop()
            stopped = time.monotonic() - t1
    return ready, stopped, last, peak


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=3, help="cluster starts to time (default: %(default)s)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds of RSS sampling after ready")
    args = parser.parse_args()
    bin_dir = find_binaries()  # a warm cache: nothing is compiled here

    results = [run_once(bin_dir, args.settle) for _ in range(args.runs)]
    print(f"{'run':>3}  {'start-to-ready s':>16}  {'stop s':>6}  {'total RSS MiB':>13}")
    for i, (ready, stopped, last, _) in enumerate(results, 1):
        print(f"{i:>3}  {ready:>16.1f}  {stopped:>6.1f}  {sum(last.values()) / 1024:>13.0f}")
    readies = [r[0] for r in results]
    median = statistics.median(readies)
    print(f"start-to-ready: median {median:.1f} s, max {max(readies):.1f} s (goal <= 30 s)")

    _, _, last, peak = results[-1]
    print(f"\n{'component (last run)':<24}  {'RSS at rest MiB':>15}  {'peak MiB':>8}")
    for name in LocalCluster.COMPONENTS:
        print(f"{name:<24}  {last.get(name, 0) / 1024:>15.0f}  {peak.get(name, 0) / 1024:>8.0f}")
    print(f"{'total':<24}  {sum(last.values()) / 1024:>15.0f}  {sum(peak.values()) / 1024:>8.0f}")


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
