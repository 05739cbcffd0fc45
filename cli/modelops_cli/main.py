"""`modelops promote` and `modelops validate`.

    modelops promote --from staging deploy/production/wine-quality.yaml            # rewrite, print the diff
    modelops promote --from staging deploy/production/wine-quality.yaml --commit   # ... on a new branch
    modelops validate deploy/staging/*.yaml deploy/production/*.yaml

promote reads what `--from` verified in the registry (MLFLOW_TRACKING_URI, else the manifest's
spec.registry.trackingUri; credentials from MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD) and pins the
manifest's three models to exactly those versions, changing nothing else in the file. With --commit it
commits the change on a branch (default promote/<model>-<version>) for a pull request: the reviewer's merge
is the approval, and the production ModelDeployment's gate (spec.gate) refuses versions without the
record, so a hand edit that skips staging cannot ship. Exit status: 0 done (or nothing to change), 1 not
possible (nothing verified, registry unreachable, bad manifest), 2 usage.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
from pathlib import Path

from modelops_cli.manifests import (
    ManifestError,
    load_documents,
    model_deployment,
    pin_versions,
    pinned_models,
)
from modelops_cli.promote import NothingVerified, Verified, latest_verified
from modelops_cli.validate import problems
from modelops_contract import ROLES
from modelops_operator.registry import Credentials, RegistryClient, RegistryError


def registry_client(tracking_uri: str | None, manifest_uri: str) -> RegistryClient:
    env = os.environ
    credentials = Credentials(
        token=env.get("MLFLOW_TRACKING_TOKEN") or None,
        username=env.get("MLFLOW_TRACKING_USERNAME") or None,
        password=env.get("MLFLOW_TRACKING_PASSWORD") or None,
    )
    return RegistryClient(tracking_uri or env.get("MLFLOW_TRACKING_URI") or manifest_uri, credentials)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def repo_path(path: Path) -> str:
    """The path as Git shows it (relative to the work tree's top), or as given outside one."""
    try:
        top = Path(git(path.resolve().parent, "rev-parse", "--show-toplevel"))
        return path.resolve().relative_to(top.resolve()).as_posix()
    except (RuntimeError, ValueError):
        return str(path)


def commit_message(path: Path, environment: str, verified: Verified) -> str:
    versions = ", ".join(f"{n}/{v}" for n, v in (verified.versions[r] for r in ROLES))
    return f"Promote {versions} in {path.name}\n\n{verified.describe()}.\n"


def commit(path: Path, branch: str | None, message: str, default_branch: str) -> str:
    """Commit the manifest on `branch` (created from the current commit unless it is the current one)."""
    repo = Path(git(path.parent, "rev-parse", "--show-toplevel"))
    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    target = branch or default_branch
    if target != current:
        git(repo, "switch", "-c", target)
    git(repo, "add", str(path.resolve().relative_to(repo.resolve())))
    git(repo, "commit", "-q", "-m", message)
    return f"{target} {git(repo, 'rev-parse', '--short', 'HEAD')}"


def promote(args: argparse.Namespace) -> int:
    path = Path(args.manifest)
    text = path.read_text()
    resource = model_deployment(load_documents(text), path)
    current = pinned_models(resource)
    model = current["predictor"]["name"]
    client = registry_client(
        args.tracking_uri, str((resource.get("spec") or {}).get("registry", {}).get("trackingUri", ""))
    )
    verified = latest_verified(client.search_versions(model), model, args.source, args.version)
    for role in ROLES:
        if verified.versions[role][0] != current[role]["name"]:
            raise ManifestError(
                f"{path}: models.{role} is {current[role]['name']!r}; {args.source} verified "
                f"{'/'.join(verified.versions[role])} with it"
            )
    edited = pin_versions(text, verified.versions, path)
    print(f"{args.source}: {verified.describe()}", file=sys.stderr)
    if edited == text:
        print(f"{path} already pins these versions; nothing to do", file=sys.stderr)
        return 0
    shown = repo_path(path)
    sys.stdout.writelines(
        difflib.unified_diff(text.splitlines(True), edited.splitlines(True), f"a/{shown}", f"b/{shown}")
    )
    path.write_text(edited)
    if args.commit:
        name, version = verified.versions["predictor"]
        where = commit(
            path, args.branch, commit_message(path, args.source, verified), f"promote/{name}-{version}"
        )
        print(f"committed on {where}", file=sys.stderr)
    return 0


def validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.files:
        for index, document in enumerate(load_documents(Path(name).read_text())):
            for problem in problems(document):
                failed += 1
                print(f"{name} (document {index + 1}): {problem}", file=sys.stderr)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="modelops", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("promote", help="pin a manifest to the versions an environment verified")
    p.add_argument(
        "manifest", help="the target environment's ModelDeployment manifest, in a Git working tree"
    )
    p.add_argument("--from", dest="source", required=True, help="the verifying environment, e.g. staging")
    p.add_argument("--version", help="this predictor version (default: the newest verified)")
    p.add_argument("--tracking-uri", help="the registry (default: MLFLOW_TRACKING_URI, else the manifest's)")
    p.add_argument("--commit", action="store_true", help="commit the change on a branch")
    p.add_argument(
        "--branch",
        help="branch to commit on (default promote/<model>-<version>; the current one: commit there)",
    )
    p.set_defaults(run=promote)
    v = commands.add_parser("validate", help="check ModelDeployment manifests against the CRD schema")
    v.add_argument("files", nargs="+")
    v.set_defaults(run=validate)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ManifestError, NothingVerified, RegistryError, RuntimeError, OSError) as e:
        print(f"modelops {args.command}: {e}", file=sys.stderr)
        return 1
