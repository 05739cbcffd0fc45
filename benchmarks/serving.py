"""Serving benchmark: the proof-of-concept request against this service (monitoring on and off) and
against `mlflow models serve` on the same prediction model, one server at a time, on 127.0.0.1.

    .venv/bin/python benchmarks/serving.py                       # trains a small model set first
    .venv/bin/python benchmarks/serving.py --tracking-uri http://127.0.0.1:5000 \\
        --predictor models:/wine_quality/3 --drift models:/wine_quality_drift/3 \\
        --outlier models:/wine_quality_outliers/3

Load is bounded: wrk (Debian package `wrk`) runs for --duration seconds per connection count, after a
short warm-up; without wrk a small async httpx generator does the same (it costs the server some
CPU on a small machine, so wrk figures are the ones to quote). Prints a Markdown table and writes
JSON with --output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from modelops_service.schema import example_request
from modelops_support.local_service import HOST, LocalService, cpu_seconds, descendants
from modelops_support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
JSON = {"Content-Type": "application/json"}


@dataclass
class Result:
    target: str
    connections: int
    requests: int
    seconds: float
    throughput: float  # requests per second
    median_ms: float
    p99_ms: float
    errors: int
    tool: str
    server_cpu_ms: float  # user+system CPU of the server's processes per request: robust to other load


# ---- load generators ---------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def _wrk_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[match[2]]


def run_wrk(url: str, body: bytes, connections: int, duration: int, workdir: Path) -> dict[str, Any]:
    """One wrk run; returns requests, seconds, throughput, median/p99 latency and error count."""
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body.decode())))
    threads = min(connections, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if done is None or "50%" not in out:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds = float(done[2]) / (1000 if done[3] == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(done[1]),
        "seconds": seconds,
        "throughput": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "median_ms": _wrk_ms(re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE)[1]),  # type: ignore[index]
        "p99_ms": _wrk_ms(re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)[1]),  # type: ignore[index]
        "errors": (int(errors[1]) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


async def _httpx_load(url: str, body: bytes, connections: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                latencies.append((time.perf_counter() - start) * 1000)
                errors += response.status_code >= 300

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "throughput": len(latencies) / seconds,
        "median_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


def run_load(
    url: str, body: bytes, connections: int, duration: int, workdir: Path
) -> tuple[dict[str, Any], str]:
    if shutil.which("wrk"):
        return run_wrk(url, body, connections, duration, workdir), "wrk"
    return asyncio.run(_httpx_load(url, body, connections, duration)), "httpx"


# ---- servers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def modelops_service(
    models: dict[str, str], workers: int, monitoring: bool, workdir: Path
) -> Iterator[tuple[str, int]]:
    env = {"MODELOPS_MONITORING_ENABLED": "true" if monitoring else "false", "BENTOML_DO_NOT_TRACK": "true"}
    service = LocalService(
        models["predictor"],
        models["drift"],
        models["outlier"],
        tracking_uri=models["tracking_uri"],
        workers=workers,
        env=env,
        workdir=workdir,
    )
    # Logging every request is part of the service's cost: it stays on (the log goes to a file).
    with service:
        assert service.pid is not None
        yield f"{service.url}/predict", service.pid


@contextlib.contextmanager
def mlflow_models_serve(models: dict[str, str], workers: int, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": models["tracking_uri"], "OMP_NUM_THREADS": "1"}
    # mlflow execs `uvicorn` by name: the virtualenv's bin directory must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", models["predictor"]]
    command += ["--env-manager", "local", "-h", HOST, "-p", str(port), "-w", str(workers)]
    log = (workdir / "mlflow-serve.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"mlflow models serve exited: {(workdir / 'mlflow-serve.log').read_text()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{port}/ping", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError("mlflow models serve not ready after 300s")
        yield f"http://{HOST}:{port}/invocations", process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


@contextlib.contextmanager
def trained_registry(workdir: Path, trials: int) -> Iterator[dict[str, str]]:
    """A temporary MLflow server with models trained by the project's pipeline."""
    from modelops_support.mlflow_server import LocalMlflowServer
    from modelops_training.pipeline import train_and_register

    data_dir = Path(
        os.environ.get("MODELOPS_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "wine-quality")
    )
    with LocalMlflowServer(workdir / "mlflow") as server:
        record = train_and_register(
            tracking_uri=server.tracking_uri,
            data_dir=data_dir,
            trials=trials,
            output=workdir / "registered.json",
        ).to_record()
        yield {
            "predictor": record["prediction_model_artifact_uri"],
            "drift": record["drift_model_artifact_uri"],
            "outlier": record["outlier_model_artifact_uri"],
            "tracking_uri": record["tracking_uri"],
        }


# ---- the run -------------------------------------------------------------------------------------


def measure(
    name: str, target: tuple[str, int, bytes], connections: int, args: argparse.Namespace, workdir: Path
) -> Result:
    url, pid, body = target
    processes = [pid, *descendants(pid)]
    cpu_before = cpu_seconds(processes)
    figures, tool = run_load(url, body, connections, args.duration, workdir)
    figures["server_cpu_ms"] = (cpu_seconds(processes) - cpu_before) * 1000 / max(figures["requests"], 1)
    rate, median, cpu = figures["throughput"], figures["median_ms"], figures["server_cpu_ms"]
    print(
        f"  {name}: {connections} conn -> {rate:.0f} req/s, median {median:.1f} ms, cpu {cpu:.2f} ms/req",
        file=sys.stderr,
    )
    return Result(name, connections, tool=tool, **figures)


def combine(samples: list[Result]) -> Result:
    """The median round (by throughput) of one target and connection count."""
    ordered = sorted(samples, key=lambda r: r.throughput)
    middle = ordered[len(ordered) // 2]
    median_ms = statistics.median(r.median_ms for r in samples)
    cpu_ms = statistics.median(r.server_cpu_ms for r in samples)
    return Result(**{**asdict(middle), "median_ms": median_ms, "server_cpu_ms": cpu_ms})


def markdown(results: list[Result]) -> str:
    lines = [
        "| target | conns | req/s | median ms | p99 ms | server CPU ms/req | requests | errors | tool |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.connections} | {r.throughput:.0f} | {r.median_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.server_cpu_ms:.2f} | {r.requests} | {r.errors} | {r.tool} |"
        )
    return "\n".join(lines)


def verdict(results: list[Result]) -> dict[str, Any]:
    """The issue's targets, computed from the results."""

    def get(target: str, connections: int) -> Result | None:
        return next((r for r in results if r.target == target and r.connections == connections), None)

    on1, on8 = get("service, monitoring on", 1), get("service, monitoring on", 8)
    off8, mlflow8 = get("service, monitoring off", 8), get("mlflow models serve", 8)
    out: dict[str, Any] = {}
    if on1:
        out["monitoring_on_median_ms_1conn"] = round(on1.median_ms, 2)
        out["median_le_15ms"] = on1.median_ms <= 15
    if on8 and mlflow8:
        out["throughput_ratio_vs_mlflow_8conn"] = round(on8.throughput / mlflow8.throughput, 2)
        out["ge_2x_mlflow"] = on8.throughput >= 2 * mlflow8.throughput
        # CPU per request bounds the throughput a core can give, whatever else runs on the machine.
        out["cpu_ratio_mlflow_over_service_8conn"] = round(mlflow8.server_cpu_ms / on8.server_cpu_ms, 2)
    if on8 and off8:
        out["monitoring_cost_8conn"] = round(1 - on8.throughput / off8.throughput, 3)
        out["cost_le_30pct"] = on8.throughput >= 0.7 * off8.throughput
        out["monitoring_cpu_cost_8conn"] = round(on8.server_cpu_ms / off8.server_cpu_ms - 1, 3)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri")
    parser.add_argument("--predictor")
    parser.add_argument("--drift")
    parser.add_argument("--outlier")
    parser.add_argument("--trials", type=int, default=3, help="training trials when no models are given")
    parser.add_argument("--workers", type=int, default=2, help="workers for every server (default 2)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (bounded load)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load first")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--skip-mlflow", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    body = json.dumps(example_request()).encode()
    mlflow_body = json.dumps({"dataframe_records": example_request()}).encode()
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        workdir = Path(tmp)
        if args.predictor:
            registry: contextlib.AbstractContextManager[dict[str, str]] = contextlib.nullcontext(
                {
                    "predictor": args.predictor,
                    "drift": args.drift,
                    "outlier": args.outlier,
                    "tracking_uri": args.tracking_uri or os.environ["MLFLOW_TRACKING_URI"],
                }
            )
        else:
            registry = trained_registry(workdir, args.trials)
        samples: list[Result] = []
        with registry as models, contextlib.ExitStack() as stack:
            # All servers run at once and the rounds alternate between them, so that load from other
            # processes on a shared machine falls on every target alike; each figure is the median round.
            targets: dict[str, tuple[str, int, bytes]] = {}
            for name, monitoring in (("service, monitoring on", True), ("service, monitoring off", False)):
                run_dir = workdir / ("on" if monitoring else "off")
                url, pid = stack.enter_context(modelops_service(models, args.workers, monitoring, run_dir))
                targets[name] = (url, pid, body)
            if not args.skip_mlflow:
                url, pid = stack.enter_context(mlflow_models_serve(models, args.workers, workdir))
                targets["mlflow models serve"] = (url, pid, mlflow_body)
            for url, _, payload in targets.values():
                httpx.post(url, content=payload, headers=JSON, timeout=30).raise_for_status()
                run_load(url, payload, max(args.connections), args.warmup, workdir)  # warm-up, not recorded
            for _ in range(args.rounds):
                for name, target in targets.items():
                    for connections in args.connections:
                        samples.append(measure(name, target, connections, args, workdir))
        results = [
            combine([r for r in samples if (r.target, r.connections) == key])
            for key in dict.fromkeys((r.target, r.connections) for r in samples)
        ]
    summary = {
        "workers": args.workers,
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "results": [asdict(r) for r in results],
        "samples": [asdict(r) for r in samples],
        "targets": verdict(results),
    }
    print(markdown(results))
    print(json.dumps(summary["targets"], indent=2))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
