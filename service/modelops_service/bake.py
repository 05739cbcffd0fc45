"""Build the service bento and export it as a daemon-free image build context (for a kaniko Job).

    python -m modelops_service.bake --predictor models:/wine_quality/3 \\
        --drift models:/wine_quality_drift/3 --outlier models:/wine_quality_outliers/3 --output DIR

With the three URIs the models are imported into the bento store and baked in; without them the
bento is the generic image that loads its models from MLflow at start-up (MODELOPS_*_URI).
DIR receives `context/` (the staged build context), `<name>.tar.gz` (the exported bento: bento.yaml,
src/, models/, env/docker/Dockerfile) and `build.json` (tag, archive, dockerfile, model versions).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

SERVICE_DIR = Path(__file__).resolve().parent
BENTOFILE = SERVICE_DIR.parent / "bentofile.yaml"
REQUIREMENTS = SERVICE_DIR.parents[1] / "requirements" / "service.txt"
DOCKERFILE = "env/docker/Dockerfile"


def build_bentofile(template: Mapping[str, Any], model_tags: Sequence[str]) -> dict[str, Any]:
    """The bentofile for this build: the template plus the baked models (if any)."""
    bentofile = dict(template)
    if model_tags:
        bentofile["models"] = list(model_tags)
    return bentofile


def stage_context(dest: Path, bentofile: Mapping[str, Any], requirements: Path = REQUIREMENTS) -> Path:
    """Copy the packages the service runs, the requirements and the bentofile into `dest` (build context)."""
    import modelops_contract
    import modelops_detectors

    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SERVICE_DIR, dest / "modelops_service", ignore=ignore, dirs_exist_ok=True)
    for library in (modelops_detectors, modelops_contract):
        source = Path(library.__path__[0])
        shutil.copytree(source, dest / source.name, ignore=ignore, dirs_exist_ok=True)
    shutil.copy2(requirements, dest / "requirements.txt")
    (dest / "bentofile.yaml").write_text(yaml.safe_dump(dict(bentofile), sort_keys=False))
    return dest


def import_models(uris: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Import each role's registry model into the bento store; returns the tags and '<name>/<version>'."""
    import bentoml

    from modelops_service.model_loader import (
        BENTO_MODEL_NAMES,
        REGISTRY_LABEL,
        parse_models_uri,
        resolve_version,
    )

    tags, versions = [], {}
    for role, uri in uris.items():
        ref = resolve_version(parse_models_uri(uri))
        label = f"{ref.name}/{ref.version}"
        model = bentoml.mlflow.import_model(BENTO_MODEL_NAMES[role], ref.uri, labels={REGISTRY_LABEL: label})
        tags.append(str(model.tag))
        versions[role] = label
    return tags, versions


def bake(uris: Mapping[str, str], output: Path) -> dict[str, Any]:
    """Stage, build and export; returns what build.json records."""
    import bentoml

    output.mkdir(parents=True, exist_ok=True)
    tags, versions = import_models(uris) if uris else ([], {})
    template = yaml.safe_load(BENTOFILE.read_text())
    context = stage_context(output / "context", build_bentofile(template, tags))
    bento = bentoml.bentos.build_bentofile(str(context / "bentofile.yaml"), build_ctx=str(context))
    archive = output / f"{bento.tag.name}.tar.gz"
    bentoml.bentos.export_bento(bento.tag, str(archive))
    record = {
        "bento": str(bento.tag),
        "archive": str(archive),
        "dockerfile": DOCKERFILE,
        "models": versions,
        "kaniko_args": [f"--context=tar://{archive.name}", f"--dockerfile={DOCKERFILE}"],
    }
    (output / "build.json").write_text(json.dumps(record, indent=2))
    return record


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modelops_service.bake", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--predictor", help="models:/<name>/<version> of the prediction model")
    parser.add_argument("--drift", help="models:/... of the drift detector")
    parser.add_argument("--outlier", help="models:/... of the outlier detector")
    parser.add_argument(
        "--output", required=True, type=Path, help="directory for the context, archive, build.json"
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--bentoml-home", type=Path, help="bento and model store (default: BENTOML_HOME)")
    args = parser.parse_args(argv)
    given = [bool(args.predictor), bool(args.drift), bool(args.outlier)]
    if any(given) and not all(given):
        parser.error("give all three of --predictor, --drift and --outlier, or none (generic image)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Both are read when bentoml and mlflow are first used, so they are set before anything imports them.
    if args.bentoml_home:
        os.environ["BENTOML_HOME"] = str(args.bentoml_home.resolve())
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    uris = (
        {"predictor": args.predictor, "drift": args.drift, "outlier": args.outlier} if args.predictor else {}
    )
    record = bake(uris, args.output.resolve())
    sys.stdout.write(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
