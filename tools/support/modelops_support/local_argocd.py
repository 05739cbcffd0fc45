"""A real Argo CD as local processes against the project's control plane, and a Git server on loopback.

- `LocalGitServer`: `git daemon` on 127.0.0.1 serving bare repositories (git:// URLs, push enabled).
- `LocalArgoCD`: redis-server (Debian), argocd-repo-server and argocd-application-controller (one binary
  built from Go modules, tools/argocd/build.sh), Argo CD's CRDs from the same module, the `argocd`
  namespace with argocd-cm carrying the project's ModelDeployment health check
  (integrations/argocd/argocd-cm-patch.yaml) and the `default` AppProject.

Every listener is on loopback but one: the application controller serves its metrics on 0.0.0.0 (no flag
moves it). While it runs, an nftables table of our own (`inet modelops_argocd_guard`) drops every packet for
that port arriving on any interface but loopback; stop() deletes it, and start() deletes one a crashed run
left behind. Needs root (nft), as the real node does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from modelops_support.kubectl import kubectl
from modelops_support.lifecycle import Managed
from modelops_support.ports import free_port
from modelops_support.probes import probe
from modelops_support.process import Component
from modelops_support.waiting import WaitTimeout, wait_for

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "tools" / "argocd" / "build.sh"
HEALTH_PATCH = REPO_ROOT / "integrations" / "argocd" / "argocd-cm-patch.yaml"
NAMESPACE = "argocd"
GUARD_TABLE = "modelops_argocd_guard"
MODULE = "github.com/argoproj/argo-cd/v3"
CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml", "applicationset-crd.yaml")
IN_CLUSTER = "https://kubernetes.default.svc"


class ArgoCDError(RuntimeError):
    """Argo CD could not be built, started or asked."""


def _run(argv: list[str], stdin: str | None = None, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)
    if done.returncode != 0:
        raise ArgoCDError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def build() -> tuple[Path, Path]:
    """The bin directory (argocd and its symlinks) and the module's source directory; builds once."""
    bin_dir = Path(_run(["bash", str(BUILD_SCRIPT)]).strip().splitlines()[-1])
    env = {**os.environ, "GOTOOLCHAIN": "go1.27.3", "GOFLAGS": "-mod=readonly"}
    module_dir = _run(
        ["go", "list", "-m", "-f", "{{.Dir}}", MODULE], cwd=BUILD_SCRIPT.parent, env=env
    ).strip()
    return bin_dir, Path(module_dir)


def guard_ruleset(port: int) -> str:
    return f"""table inet {GUARD_TABLE} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname != "lo" tcp dport {port} counter drop
  }}
}}
"""


def remove_guard() -> None:
    subprocess.run(["nft", "delete", "table", "inet", GUARD_TABLE], capture_output=True, check=False)


class LocalGitServer(Managed):
    """`git daemon` on loopback serving the bare repositories under `root` (push enabled)."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process = Component(
            "git-daemon",
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                f"--base-path={root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(root),
            ],
            log_path,
        )

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def create(self, name: str, branch: str = "main") -> str:
        """A new empty bare repository; its URL."""
        path = self.root / f"{name}.git"
        _run(["git", "init", "-q", "--bare", f"--initial-branch={branch}", str(path)])
        return self.url(name)

    def start(self) -> LocalGitServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.process.start()

        def answers() -> bool:  # 128: "no such repository", from a daemon that listens
            listing = subprocess.run(["git", "ls-remote", self.url("none")], capture_output=True)
            return listing.returncode in (0, 128)

        try:
            wait_for(answers, 20, 0.2, "git daemon")
        except WaitTimeout as e:
            raise ArgoCDError(str(e)) from e
        return self

    def stop(self) -> None:
        self.process.stop(10)


class LocalArgoCD(Managed):
    """The application controller and repo server of a real Argo CD, with redis, on the given cluster."""

    def __init__(self, kubeconfig: Path | str, workdir: Path, resync_seconds: int = 5) -> None:
        self.kubeconfig = str(kubeconfig)
        self.workdir = workdir
        self.resync_seconds = resync_seconds
        self.redis_port, self.repo_port, self.repo_metrics_port = free_port(), free_port(), free_port()
        self.metrics_port = free_port()
        self.components: list[Component] = []

    # ------------------------------------------------------------------------------------------ start

    def start(self) -> LocalArgoCD:
        if shutil.which("redis-server") is None:
            raise ArgoCDError("redis-server is not installed (make argocd-tools installs it)")
        if shutil.which("nft") is None:
            raise ArgoCDError("nft is not installed (make node-tools installs nftables)")
        bin_dir, module_dir = build()
        remove_guard()  # left by a run that crashed
        _run(["nft", "-f", "-"], stdin=guard_ruleset(self.metrics_port))
        try:
            self._install(module_dir / "manifests" / "crds")
            self._start_processes(bin_dir, module_dir / "hack")
        except BaseException:
            self.stop()
            raise
        return self

    def _install(self, crd_dir: Path) -> None:
        for name in CRD_FILES:
            kubectl(self.kubeconfig, "apply", "--server-side", "-f", str(crd_dir / name))
        for name in ("applications.argoproj.io", "appprojects.argoproj.io"):
            kubectl(self.kubeconfig, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        health = yaml.safe_load(HEALTH_PATCH.read_text())["data"]
        objects = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "namespace": NAMESPACE, "labels": _part_of()},
                "data": {**health, "timeout.reconciliation": f"{self.resync_seconds}s"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": _part_of()},
                "type": "Opaque",
            },
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            },
        ]
        for obj in objects:
            kubectl(
                self.kubeconfig,
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                "-",
                stdin=json.dumps(obj),
            )

    def _start_processes(self, bin_dir: Path, hack_dir: Path) -> None:
        logs = self.workdir / "logs"
        # The repo server runs Argo CD's git-verify-wrapper.sh for every revision (its image has it on PATH).
        scripts = self.workdir / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        for name in ("git-verify-wrapper.sh", "gpg-wrapper.sh"):
            shutil.copy(hack_dir / name, scripts / name)
            (scripts / name).chmod(0o755)
        env = {
            **os.environ,
            "PATH": f"{scripts}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "KUBECONFIG": self.kubeconfig,
            "ARGOCD_FAKE_IN_CLUSTER": "true",  # the in-cluster destination is this kubeconfig's cluster
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_RECONCILIATION_JITTER": "0",
            "HOME": str(self.workdir / "home"),
        }
        (self.workdir / "home").mkdir(parents=True, exist_ok=True)
        redis = Component(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            logs / "redis.log",
        )
        repo = Component(
            "argocd-repo-server",
            [
                str(bin_dir / "argocd-repo-server"),
                "--address",
                "127.0.0.1",
                "--port",
                str(self.repo_port),
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(self.repo_metrics_port),
                "--redis",
                f"127.0.0.1:{self.redis_port}",
                "--disable-tls",
                # No webhook here: the branch is resolved again after the resync period, not after 3 min.
                "--revision-cache-expiration",
                f"{self.resync_seconds}s",
                "--client-ca-path",
                "",
                "--loglevel",
                "warn",
            ],
            logs / "repo-server.log",
            env={**env, "ARGOCD_EXEC_TIMEOUT": "60s"},
            cwd=self.workdir,
        )
        controller = Component(
            "argocd-application-controller",
            [
                str(bin_dir / "argocd-application-controller"),
                "--kubeconfig",
                self.kubeconfig,
                "--namespace",
                NAMESPACE,
                "--redis",
                f"127.0.0.1:{self.redis_port}",
                "--repo-server",
                f"127.0.0.1:{self.repo_port}",
                "--repo-server-plaintext",
                "--metrics-port",
                str(self.metrics_port),
                # Each resource's health message in the Application's status (Argo CD 3 keeps it in redis
                # only by default), as `argocd app get` would show it.
                "--persist-resource-health",
                "--app-resync",
                str(self.resync_seconds),
                "--status-processors",
                "4",
                "--operation-processors",
                "2",
                "--loglevel",
                "warn",
            ],
            logs / "application-controller.log",
            env=env,
            cwd=self.workdir,
        )
        for component in (redis, repo, controller):
            component.start()
            self.components.append(component)

        def up() -> bool:
            for component in self.components:
                if not component.is_running():
                    raise ArgoCDError(f"{component.name} exited: {self.log_tail(component.name)}")
            return probe(f"http://127.0.0.1:{self.metrics_port}/metrics")

        try:
            wait_for(up, 120, 0.5, "Argo CD's application controller")
        except WaitTimeout as e:
            raise ArgoCDError(f"{e}: {self.log_tail('argocd-application-controller')}") from e

    # ------------------------------------------------------------------------------------------ asking

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def apply_application(self, application: dict[str, Any]) -> None:
        kubectl(self.kubeconfig, "apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(application))

    def refresh(self, name: str) -> None:
        """What a Git host's webhook does on a push (this setup has none): the Application reads its
        repository now, past the revision cache, instead of at the next resync."""
        kubectl(
            self.kubeconfig,
            "annotate",
            "application",
            name,
            "-n",
            NAMESPACE,
            "argocd.argoproj.io/refresh=hard",
            "--overwrite",
        )

    def application(self, name: str) -> dict[str, Any]:
        return json.loads(kubectl(self.kubeconfig, "get", "application", name, "-n", NAMESPACE, "-o", "json"))

    def health(self, name: str) -> tuple[str, str, str]:
        """(health status, message, sync status) of an Application as Argo CD reports it; the message is
        its resources' health messages (the health checks' words), else the application's own."""
        status = self.application(name).get("status") or {}
        health = status.get("health") or {}
        resources = status.get("resources") or []
        messages = [r["health"]["message"] for r in resources if (r.get("health") or {}).get("message")]
        return (
            health.get("status", ""),
            "; ".join(messages) or health.get("message", ""),
            (status.get("sync") or {}).get("status", ""),
        )

    # ------------------------------------------------------------------------------------------ stop

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop(10)
        self.components = []
        remove_guard()


def _part_of() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "argocd"}
