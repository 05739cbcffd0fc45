"""Where the control-plane binaries are: tools/cluster/build.sh builds or finds them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_BINARIES = ("kubelet", "kube-proxy", "modelops-pause")
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "build.sh"
TOOLS = Path(__file__).resolve().parents[2]


class BinariesMissing(RuntimeError):
    """The binaries are neither in the cache nor buildable here."""


def missing_binaries(bin_dir: Path, node: bool = False) -> list[str]:
    """The names of the binaries not executable in `bin_dir`."""
    return [b for b in BINARIES + (NODE_BINARIES if node else ()) if not os.access(bin_dir / b, os.X_OK)]


def _bin_dir_from(script: Path, *args: str) -> Path:
    """Run a build script (progress to stderr) and return the bin directory it prints last."""
    result = subprocess.run(["bash", str(script), *args], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesMissing(f"{script} failed with exit code {result.returncode}")
    return Path(lines[-1])


def find_tool(name: str) -> Path:
    """A node-side tool's binary: `traefik` or `registry` (tools/<name>/build.sh builds it into its cache
    once; MODELOPS_<NAME>_BIN_DIR names a ready one)."""
    script = TOOLS / name / "build.sh"
    binary = _bin_dir_from(script) / name
    if not os.access(binary, os.X_OK):
        raise BinariesMissing(f"{script} printed a directory without {name}")
    return binary


def find_binaries(node: bool = False) -> Path:
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
    bin_dir = _bin_dir_from(BUILD_SCRIPT, *(["--node"] if node else []))
    missing = missing_binaries(bin_dir, node)
    if missing:
        raise BinariesMissing(f"{BUILD_SCRIPT} printed {bin_dir} but it lacks {missing}")
    return bin_dir


def traefik_crds() -> Path:
    """Traefik's CRD definitions (Middleware, IngressRoute, ...) from the source of the pinned module
    (tools/traefik/go.mod), which the Traefik build downloaded: `go mod download` finds it offline."""
    module_dir = TOOLS / "traefik"
    version = next(
        line.split()[2]
        for line in (module_dir / "go.mod").read_text().splitlines()
        if line.startswith("require github.com/traefik/traefik/v3 ")
    )
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/traefik/traefik/v3@{version}"],
        cwd=module_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BinariesMissing(f"Traefik's module source is not at hand: {done.stderr.strip()[:300]}")
    crds = Path(json.loads(done.stdout)["Dir"]) / "docs/content/reference/dynamic-configuration"
    return crds / "kubernetes-crd-definition-v1.yml"
