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


def _module_dir(module: str, version: str) -> Path:
    """The source of a module the Traefik build downloaded (tools/traefik): `go mod download` finds it
    offline."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=TOOLS / "traefik",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BinariesMissing(f"{module}'s source is not at hand: {done.stderr.strip()[:300]}")
    return Path(json.loads(done.stdout)["Dir"])


def _required_version(module: str) -> str:
    """The version tools/traefik/go.mod requires of a module (directly or as Traefik's dependency)."""
    for line in (TOOLS / "traefik" / "go.mod").read_text().splitlines():
        words = line.replace("require ", "").split()
        if len(words) >= 2 and words[0] == module:
            return words[1]
    raise BinariesMissing(f"tools/traefik/go.mod requires no {module}")


def traefik_crds() -> Path:
    """Traefik's CRD definitions (Middleware, IngressRoute, ...) from the source of the pinned module."""
    module = "github.com/traefik/traefik/v3"
    crds = _module_dir(module, _required_version(module)) / "docs/content/reference/dynamic-configuration"
    return crds / "kubernetes-crd-definition-v1.yml"


def gateway_api_crds() -> list[Path]:
    """The Gateway API's standard-channel CRDs (GatewayClass, Gateway, HTTPRoute, ...) at the version the
    pinned Traefik supports (its go.mod's sigs.k8s.io/gateway-api)."""
    module = "sigs.k8s.io/gateway-api"
    standard = _module_dir(module, _required_version(module)) / "config/crd/standard"
    found = sorted(standard.glob("gateway.networking.k8s.io_*.yaml"))
    if not found:
        raise BinariesMissing(f"no Gateway API CRDs in {standard}")
    return found
