"""Serving benchmark: the proof-of-concept request against this service (monitoring on and off), against
`mlflow models serve` and against a plain BentoML service (benchmarks/plain_bentoml) on the same
prediction model, all on 127.0.0.1, side by side in one run.

    .venv/bin/python benchmarks/serving.py                       # trains a small model set first
    .venv/bin/python benchmarks/serving.py --tracking-uri http://127.0.0.1:5000 \\
        --predictor models:/wine_quality/3 --drift models:/wine_quality_drift/3 \\
        --outlier models:/wine_quality_outliers/3

The headline servers run as the operator deploys them (one worker; --workers), the anchors too; this
service also runs with two workers beside them (--also-workers), and once the rounds are done the
headline service gets the fuzz tests' corpus and is measured again ("after the fuzz corpus").

Load is bounded: wrk (Debian package `wrk`) runs for --duration seconds per connection count, after a
short warm-up; without wrk a small async httpx generator does the same (it costs the server some
CPU on a small machine, so wrk figures are the ones to quote). Latency: p50, p90, p99, p99.9 and max
(wrk's own histogram, read in its Lua done() hook). Prints a Markdown table and writes JSON with --output.
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

from modelops_contract import DEFAULTS
from modelops_service.schema import example_request
from modelops_support.fuzz import cases
from modelops_support.local_service import HOST, LocalService, cpu_seconds, descendants
from modelops_support.ports import free_port
from modelops_support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[1]
PLAIN_BENTOML = REPO_ROOT / "benchmarks" / "plain_bentoml"
JSON = {"Content-Type": "application/json"}


@dataclass
class Result:
    target: str
    connections: int
    requests: int
    seconds: float
    throughput: float  # requests per second
    median_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    tool: str
    server_cpu_ms: float  # user+system CPU of the server's processes per request: robust to other load


# ---- load generators ---------------------------------------------------------------------------

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}

done = function(summary, latency, requests)
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    io.write(string.format("modelops-latency p%g %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("modelops-latency max %d\\n", latency.max))
end
"""
# wrk's percentile names -> Result fields (values in microseconds from the Lua hook)
WRK_PERCENTILES = {"p50": "median_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p999_ms", "max": "max_ms"}


def run_wrk(url: str, body: bytes, connections: int, duration: int, workdir: Path) -> dict[str, Any]:
    """One wrk run; returns requests, seconds, throughput, latency percentiles and error count."""
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body.decode())))
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    latency = dict(re.findall(r"^modelops-latency (\S+) (\d+)$", out, re.MULTILINE))
    if done is None or set(latency) != set(WRK_PERCENTILES):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds = float(done[2]) / (1000 if done[3] == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(done[1]),
        "seconds": seconds,
        "throughput": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        **{field: int(latency[name]) / 1000 for name, field in WRK_PERCENTILES.items()},
        "errors": (int(errors[1]) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


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
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "p999_ms": percentile(latencies, 0.999),
        "max_ms": latencies[-1],
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
    service = LocalService.for_models(models, workers=workers, env=env, workdir=workdir)
    # Logging every request is part of the service's cost: it stays on (the log goes to a file).
    with service:
        assert service.pid is not None
        yield f"{service.url}/predict", service.pid


@contextlib.contextmanager
def server_process(
    name: str, command: list[str], env: dict[str, str], ready_url: str, workdir: Path, cwd: Path | None = None
) -> Iterator[int]:
    """A server in its own process group, logging to workdir/<name>.log; yields its pid once ready_url
    answers 200; stopped (SIGTERM, then SIGKILL) on exit."""
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
    )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log_path.read_text()[-3000:]}")
            return httpx.get(ready_url, timeout=2).status_code == 200

        wait_for(ready, 300, 0.3, f"{name} ready", ignore=(httpx.HTTPError,))
        yield process.pid
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


def venv_env(models: dict[str, str]) -> dict[str, str]:
    """The environment of an anchor server: the registry, one OpenMP thread, the virtualenv on PATH (mlflow
    and bentoml exec their servers by name)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": models["tracking_uri"], "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextlib.contextmanager
def mlflow_models_serve(models: dict[str, str], workers: int, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", models["predictor"]]
    command += ["--env-manager", "local", "-h", HOST, "-p", str(port), "-w", str(workers)]
    ready = f"http://{HOST}:{port}/ping"
    with server_process("mlflow-serve", command, venv_env(models), ready, workdir) as pid:
        yield f"http://{HOST}:{port}/invocations", pid


@contextlib.contextmanager
def plain_bentoml(models: dict[str, str], workers: int, workdir: Path) -> Iterator[tuple[str, int]]:
    """benchmarks/plain_bentoml: the same model behind a few lines of BentoML, nothing else."""
    port = free_port()
    env = {**venv_env(models), "PLAIN_MODEL_URI": models["predictor"], "PLAIN_WORKERS": str(workers)}
    env["BENTOML_HOME"] = str(workdir / "bentoml-plain")
    env["BENTOML_DO_NOT_TRACK"] = "true"
    command = [sys.executable, "-m", "bentoml", "serve", "plain_service:PlainService"]
    command += ["--host", HOST, "--port", str(port)]
    ready = f"http://{HOST}:{port}/readyz"
    with server_process("plain-bentoml", command, env, ready, workdir, cwd=PLAIN_BENTOML) as pid:
        yield f"http://{HOST}:{port}/predict", pid


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


def send_fuzz_corpus(url: str) -> None:
    """The fuzz tests' corpus (about 450 bodies, all answered 4xx), once, on one connection."""
    records = example_request()
    with httpx.Client(timeout=60) as http:
        for _what, body, content_type in cases(records):
            http.post(url, content=body, headers={"Content-Type": content_type} if content_type else {})


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
    """The median round (by throughput) of one target and connection count; the worst max of all rounds."""
    ordered = sorted(samples, key=lambda r: r.throughput)
    middle = ordered[len(ordered) // 2]
    median_ms = statistics.median(r.median_ms for r in samples)
    cpu_ms = statistics.median(r.server_cpu_ms for r in samples)
    worst = max(r.max_ms for r in samples)
    errors = sum(r.errors for r in samples)
    return Result(
        **{
            **asdict(middle),
            "median_ms": median_ms,
            "server_cpu_ms": cpu_ms,
            "max_ms": worst,
            "errors": errors,
        }
    )


def markdown(results: list[Result]) -> str:
    lines = [
        "| target | conns | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | server CPU ms/req "
        "| requests | errors | tool |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.connections} | {r.throughput:.0f} | {r.median_ms:.1f} | {r.p90_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.p999_ms:.1f} | {r.max_ms:.1f} | {r.server_cpu_ms:.2f} | {r.requests} "
            f"| {r.errors} | {r.tool} |"
        )
    return "\n".join(lines)


ON, OFF, MLFLOW, PLAIN = (
    "service, monitoring on",
    "service, monitoring off",
    "mlflow models serve",
    "plain BentoML",
)
FUZZED = "service, monitoring on, after the fuzz corpus"


def more_workers(name: str, workers: int) -> str:
    """The name of a target run with another worker count than the deployed one."""
    return f"{name} ({workers} workers)"


def paired_cpu_costs(samples: list[Result], connections: int) -> list[float]:
    """Monitoring's CPU cost per request in each round: on / off - 1, the two measured one after the
    other under the same conditions (the machine's load moves between rounds by more than the cost)."""
    on = [r.server_cpu_ms for r in samples if (r.target, r.connections) == (ON, connections)]
    off = [r.server_cpu_ms for r in samples if (r.target, r.connections) == (OFF, connections)]
    return [a / b - 1 for a, b in zip(on, off, strict=False) if b > 0]


def verdict(results: list[Result], samples: list[Result] | None = None) -> dict[str, Any]:
    """The targets of the serving issue, computed from the results (and the rounds, for the CPU cost)."""

    def get(target: str, connections: int) -> Result | None:
        return next((r for r in results if r.target == target and r.connections == connections), None)

    on1, on8 = get(ON, 1), get(ON, 8)
    off8, mlflow8, plain8 = get(OFF, 8), get(MLFLOW, 8), get(PLAIN, 8)
    out: dict[str, Any] = {"errors": sum(r.errors for r in results)}
    out["no_errors"] = out["errors"] == 0
    for label, result in (("fresh", on1), ("after_fuzz", get(FUZZED, 1))):
        if result is None:
            continue
        out[f"monitoring_on_1conn_{label}_p50_ms"] = round(result.median_ms, 2)
        out[f"monitoring_on_1conn_{label}_p99_ms"] = round(result.p99_ms, 2)
        out[f"monitoring_on_1conn_{label}_p999_ms"] = round(result.p999_ms, 2)
        out[f"monitoring_on_1conn_{label}_max_ms"] = round(result.max_ms, 2)
        out[f"{label}_p99_le_10ms"] = result.p99_ms <= 10
        out[f"{label}_p999_le_25ms"] = result.p999_ms <= 25
    if on8 and mlflow8:
        out["throughput_ratio_vs_mlflow_8conn"] = round(on8.throughput / mlflow8.throughput, 2)
        out["ge_5x_mlflow"] = on8.throughput >= 5 * mlflow8.throughput
    if on8 and plain8:
        out["throughput_ratio_vs_plain_bentoml_8conn"] = round(on8.throughput / plain8.throughput, 2)
        out["ge_90pct_plain_bentoml"] = on8.throughput >= 0.9 * plain8.throughput
    if on8 and off8:
        # CPU per request bounds the throughput a core can give, whatever else runs on the machine.
        out["monitoring_cpu_cost_8conn_of_medians"] = round(on8.server_cpu_ms / off8.server_cpu_ms - 1, 3)
        paired = paired_cpu_costs(samples or [], 8)
        if paired:
            out["monitoring_cpu_cost_8conn_per_round"] = [round(c, 3) for c in paired]
            out["monitoring_cpu_cost_8conn"] = round(statistics.median(paired), 3)
            out["monitoring_cpu_cost_le_15pct"] = statistics.median(paired) <= 0.15
    if on1 and get(OFF, 1):
        paired = paired_cpu_costs(samples or [], 1)
        if paired:
            out["monitoring_cpu_cost_1conn"] = round(statistics.median(paired), 3)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri")
    parser.add_argument("--predictor")
    parser.add_argument("--drift")
    parser.add_argument("--outlier")
    parser.add_argument("--trials", type=int, default=3, help="training trials when no models are given")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULTS.workers,
        help=f"workers of the headline servers and the anchors (default {DEFAULTS.workers}: as deployed)",
    )
    parser.add_argument(
        "--also-workers",
        type=int,
        nargs="*",
        default=[2],
        help="this service with more workers, beside",
    )
    parser.add_argument("--skip-fuzz", action="store_true", help="no rows after the fuzz corpus")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (bounded load)")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per target (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load first")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--skip-anchors", action="store_true", help="only this service (on and off)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    body = json.dumps(example_request()).encode()
    mlflow_body = json.dumps({"dataframe_records": example_request()}).encode()
    plain_body = json.dumps({"records": example_request()}).encode()
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
            for workers in (args.workers, *args.also_workers):
                for name, monitoring in ((ON, True), (OFF, False)):
                    run_dir = workdir / f"{'on' if monitoring else 'off'}-{workers}"
                    served = stack.enter_context(modelops_service(models, workers, monitoring, run_dir))
                    label = name if workers == args.workers else more_workers(name, workers)
                    targets[label] = (*served, body)
            if not args.skip_anchors:
                url, pid = stack.enter_context(mlflow_models_serve(models, args.workers, workdir))
                targets[MLFLOW] = (url, pid, mlflow_body)
                url, pid = stack.enter_context(plain_bentoml(models, args.workers, workdir))
                targets[PLAIN] = (url, pid, plain_body)
            for url, _, payload in targets.values():
                httpx.post(url, content=payload, headers=JSON, timeout=30).raise_for_status()
                run_load(url, payload, max(args.connections), args.warmup, workdir)  # warm-up, not recorded
            for _ in range(args.rounds):
                for name, target in targets.items():
                    for connections in args.connections:
                        samples.append(measure(name, target, connections, args, workdir))
            if not args.skip_fuzz:
                # The deployed configuration again, after the fuzz corpus (bad bodies must leave no trace).
                send_fuzz_corpus(targets[ON][0])
                for _ in range(args.rounds):
                    for connections in args.connections:
                        samples.append(measure(FUZZED, targets[ON], connections, args, workdir))
        results = [
            combine([r for r in samples if (r.target, r.connections) == key])
            for key in dict.fromkeys((r.target, r.connections) for r in samples)
        ]
    summary = {
        "workers": args.workers,
        "also_workers": args.also_workers,
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "results": [asdict(r) for r in results],
        "samples": [asdict(r) for r in samples],
        "targets": verdict(results, samples),
    }
    print(markdown(results))
    print(json.dumps(summary["targets"], indent=2))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    from modelops_support.lifecycle import run_main

    run_main(main)  # SIGTERM stops what was started as Ctrl-C does
