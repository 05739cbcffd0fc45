"""Wall time of the full default training (the CLI `make demo` runs), with the ROC AUC it reached.

    .venv/bin/python benchmarks/training.py [--trials 32] [--runs 1] [--data-dir DIR]

Each run starts `python -m modelops_training` in a fresh process against a fresh sqlite registry in a temp
dir (environment already installed, so the time includes Python start-up and imports) and reads the
registered_models.json it writes: `train s` is the in-process time of train_and_register (data, search,
detectors, registration), `wall s` the whole command, `cpu s` its CPU time (user + system: close to the
wall time on an idle machine, since training uses one thread). The 1-minute load average before and after
each run is printed too: this machine is shared, and a busy neighbour slows everything several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(trials: int, data_dir: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "registered_models.json"
        command = [
            sys.executable,
            "-m",
            "modelops_training",
            "--tracking-uri",
            f"sqlite:///{tmp}/mlflow/mlflow.db",
            "--output",
            str(output),
            "--trials",
            str(trials),
            "--no-progress",
        ]
        if data_dir:
            command += ["--data-dir", data_dir]
        Path(tmp, "mlflow").mkdir()
        load_before = os.getloadavg()[0]
        cpu_before = _children_cpu()
        started = time.monotonic()
        subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.monotonic() - started
        cpu = _children_cpu() - cpu_before
        record = json.loads(output.read_text())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "train_s": record["duration_s"],
        "roc_auc": record["metrics"]["roc_auc"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--data-dir", default=os.environ.get("MODELOPS_DATA_DIR"))
    args = parser.parse_args()

    threads = os.environ.get("OMP_NUM_THREADS", "-")
    print(f"{args.trials} trials, {os.cpu_count()} CPUs, OMP_NUM_THREADS={threads}")
    print(f"{'run':>3} {'wall s':>8} {'cpu s':>8} {'train s':>8} {'roc_auc':>8} {'load 1m before/after':>22}")
    results = []
    for number in range(1, args.runs + 1):
        result = run_once(args.trials, args.data_dir)
        results.append(result)
        print(
            f"{number:>3} {result['wall_s']:>8.1f} {result['cpu_s']:>8.1f} {result['train_s']:>8.1f} "
            f"{result['roc_auc']:>8.4f} "
            f"{result['load_before']:>10.2f} / {result['load_after']:<9.2f}"
        )
    if len(results) > 1:
        print(
            f"median wall {statistics.median(r['wall_s'] for r in results):.1f} s, "
            f"train {statistics.median(r['train_s'] for r in results):.1f} s"
        )


if __name__ == "__main__":
    main()
