"""Command line: `python -m modelops_training` / `modelops-train`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from modelops_training.data import DATA_DIR_ENV, DataError
from modelops_training.quiet import quiet_third_party_output
from modelops_training.state import (
    STATE_DIR_ENV,
    default_output,
    default_tracking_uri,
    sqlite_artifact_root,
    state_dir,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelops-train",
        description="Train the wine-quality classifier and its drift and outlier detectors, "
        "and register the three models in MLflow.",
    )
    parser.add_argument(
        "--tracking-uri",
        help=f"MLflow tracking/registry URI (default: sqlite registry under ${STATE_DIR_ENV} or ./.modelops)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"local copy of the UCI CSVs (default: ${DATA_DIR_ENV}, else download into ~/.cache/modelops)",
    )
    parser.add_argument("--trials", type=int, default=32, help="hyperparameter search trials (default: 32)")
    parser.add_argument("--seed", type=int, default=42, help="seed for the split, the search and the models")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write registered_models.json (default: <state dir>/registered_models.json)",
    )
    parser.add_argument(
        "--detectors",
        choices=["alibi", "permissive"],
        default="alibi",
        help="detector implementation: alibi-detect (Business Source License 1.1, the default) or "
        "permissive (scipy + scikit-learn, same tests and scores)",
    )
    parser.add_argument(
        "--threads", type=int, help="OpenMP threads for training (default: $OMP_NUM_THREADS or 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 1:
        print("--trials must be at least 1", file=sys.stderr)  # noqa: T201
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state = state_dir()
    tracking_uri = args.tracking_uri or default_tracking_uri(state)
    artifact_root = sqlite_artifact_root(tracking_uri)
    if artifact_root is not None:
        artifact_root.mkdir(parents=True, exist_ok=True)  # sqlite needs the database's folder to exist
    output = args.output or default_output(state)

    quiet_third_party_output()
    # Imported here so that --help answers without loading MLflow and the ML libraries.
    from modelops_training.pipeline import RegistryStoreError, train_and_register
    from modelops_training.registration import format_summary

    try:
        registered = train_and_register(
            tracking_uri=tracking_uri,
            data_dir=args.data_dir,
            trials=args.trials,
            seed=args.seed,
            output=output,
            progress=not args.no_progress,
            threads=args.threads,
            detectors=args.detectors,
        )
    except (DataError, RegistryStoreError) as e:
        print(f"error: {e}", file=sys.stderr)  # noqa: T201
        return 1
    print(format_summary(registered))  # noqa: T201
    print(f"Wrote {output}")  # noqa: T201
    return 0
