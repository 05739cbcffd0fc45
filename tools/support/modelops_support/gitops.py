"""The GitOps repository of the promotion pipeline, for the tests and the promotion demo: a clone of a
repository on a `LocalGitServer` holding deploy/staging and deploy/production (this project's, with the
registry and soak rewritten), commits that pin versions, and the shipped Argo CD Applications pointed at it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from modelops_cli.manifests import pin_versions
from modelops_contract import VERIFIED_TAG_PREFIX
from modelops_support.local_argocd import IN_CLUSTER, LocalArgoCD, LocalGitServer

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY = REPO_ROOT / "deploy"
APPLICATIONS = REPO_ROOT / "integrations" / "argocd" / "applications"
ENVIRONMENTS = ("staging", "production")
MODEL_NAMES = {"predictor": "wine_quality", "drift": "wine_quality_drift", "outlier": "wine_quality_outliers"}
SHIPPED_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
AUTHOR = {
    "GIT_AUTHOR_NAME": "Reviewer",
    "GIT_AUTHOR_EMAIL": "reviewer@example.invalid",
    "GIT_COMMITTER_NAME": "Reviewer",
    "GIT_COMMITTER_EMAIL": "reviewer@example.invalid",
}
GIT_ENV = {"PATH": "/usr/bin:/bin", **AUTHOR}


def git(clone: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True, env=GIT_ENV)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class DeployRepo:
    """A working clone of the deploy repository; `main` is the branch Argo CD watches."""

    def __init__(self, clone: Path, url: str) -> None:
        self.clone = clone
        self.url = url

    @classmethod
    def create(
        cls, server: LocalGitServer, name: str, clone: Path, tracking_uri: str, soak_seconds: int
    ) -> DeployRepo:
        """A new repository with this project's deploy/ (registry and soak rewritten), pushed to main."""
        url = server.create(name)
        subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, capture_output=True)
        for env in ENVIRONMENTS:
            text = (DEPLOY / env / "wine-quality.yaml").read_text()
            text = text.replace(SHIPPED_TRACKING_URI, tracking_uri)
            text = text.replace("soakSeconds: 600", f"soakSeconds: {soak_seconds}")
            (clone / "deploy" / env).mkdir(parents=True)
            (clone / "deploy" / env / "wine-quality.yaml").write_text(text)
        git(clone, "add", ".")
        git(clone, "commit", "-qm", "Deployments of the wine-quality model")
        git(clone, "push", "-q", "origin", "HEAD:main")
        return cls(clone, url)

    def manifest(self, env: str) -> Path:
        return self.clone / "deploy" / env / "wine-quality.yaml"

    def pin(self, env: str, versions: Mapping[str, str], message: str) -> None:
        """Commit `versions` (role -> version) into env's manifest on the current branch and push to main."""
        path = self.manifest(env)
        pins = {role: (MODEL_NAMES[role], version) for role, version in versions.items()}
        before = path.read_text()
        after = pin_versions(before, pins, path)
        if after == before:
            raise ValueError(f"{path} pins these versions already: nothing to commit")
        path.write_text(after)
        git(self.clone, "commit", "-qam", message)
        self.push()

    def push(self) -> None:
        git(self.clone, "push", "-q", "origin", "HEAD:main")

    def promote(self, source: str, tracking_uri: str) -> subprocess.CompletedProcess[str]:
        """`modelops promote --from source --commit` on the production manifest, as a person runs it."""
        argv = [sys.executable, "-m", "modelops_cli", "promote", "--from", source, "--commit"]
        argv += ["--tracking-uri", tracking_uri, str(self.manifest("production"))]
        return subprocess.run(argv, capture_output=True, text=True, env=GIT_ENV, check=False)

    def merge(self, branch: str) -> None:
        """The reviewer's merge of `branch` into main, pushed (what Argo CD watches)."""
        git(self.clone, "switch", "-q", "main")
        git(self.clone, "merge", "-q", "--ff-only", branch)
        self.push()


def application(env: str, name: str, repo_url: str, namespace: str) -> dict[str, Any]:
    """The shipped Application of env (integrations/argocd/applications), pointed at a repository and a
    namespace of the cluster Argo CD runs in."""
    app = yaml.safe_load((APPLICATIONS / f"{env}.yaml").read_text())
    app["metadata"]["name"] = name
    app["spec"]["source"]["repoURL"] = repo_url
    app["spec"]["destination"] = {"server": IN_CLUSTER, "namespace": namespace}
    return app


def start_applications(
    argo: LocalArgoCD, repo: DeployRepo, names: Mapping[str, str], namespaces: Mapping[str, str]
) -> None:
    for env in ENVIRONMENTS:
        argo.apply_application(application(env, names[env], repo.url, namespaces[env]))


def verification_record(tags: Mapping[str, str], environment: str = "staging") -> dict[str, Any] | None:
    """The record of `environment` among a model version's tags, parsed."""
    value = tags.get(f"{VERIFIED_TAG_PREFIX}{environment}")
    return None if value is None else json.loads(value)
