"""Where the control-plane binaries are: tools/cluster/build.sh builds or finds them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "build.sh"


class BinariesMissing(RuntimeError):
    """The binaries are neither in the cache nor buildable here."""


def missing_binaries(bin_dir: Path) -> list[str]:
    """The names of the binaries not executable in `bin_dir`."""
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def find_binaries() -> Path:
    """The bin directory, building into the cache when it is empty (a cold build takes minutes).

    MODELOPS_CLUSTER_BIN_DIR names a directory of ready binaries and skips the build.
    """
    if not BUILD_SCRIPT.is_file():
        env_dir = os.environ.get("MODELOPS_CLUSTER_BIN_DIR")
        if env_dir and not missing_binaries(Path(env_dir)):
            return Path(env_dir)
        raise BinariesMissing(
            f"{BUILD_SCRIPT} not found: set MODELOPS_CLUSTER_BIN_DIR to a directory of {BINARIES}"
        )
    # Progress goes to stderr (inherited); the last stdout line is the bin directory.
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesMissing(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    bin_dir = Path(lines[-1])
    missing = missing_binaries(bin_dir)
    if missing:
        raise BinariesMissing(f"{BUILD_SCRIPT} printed {bin_dir} but it lacks {missing}")
    return bin_dir
