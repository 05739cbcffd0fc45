"""kubectl: the one built from the pinned Kubernetes module (tools/kubectl/build.sh), never the machine's.

A plain Debian machine has no kubectl (or one too old for the control plane's release), so the harnesses,
the tests and the demo run the binary the project builds with the control plane; MODELOPS_KUBECTL names
another one instead.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "kubectl" / "build.sh"


@functools.cache
def kubectl_binary() -> str:
    """The path of kubectl: $MODELOPS_KUBECTL, else the build script's (built into its cache once)."""
    override = os.environ.get("MODELOPS_KUBECTL")
    if override:
        return override
    built = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = built.stdout.strip().splitlines()
    if built.returncode != 0 or not lines:
        raise RuntimeError(f"{BUILD_SCRIPT} failed with exit code {built.returncode}")
    return str(Path(lines[-1]) / "kubectl")


def kubectl(kubeconfig: Path | str, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
    """Run kubectl against `kubeconfig`; raise with its stderr when it fails."""
    result = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
