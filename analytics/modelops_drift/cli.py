"""`python -m modelops_drift`: drift over time from Log Analytics or from local log lines."""

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from azure.core.exceptions import AzureError
from azure.monitor.query import LogsQueryClient

from modelops_drift.chart import PanelSummary, check_chart_path, render_chart
from modelops_drift.logs import read_points
from modelops_drift.query import (
    DEFAULT_SERVICE_NAME,
    DEFAULT_SINCE,
    build_query,
    check_service_name,
    parse_since,
)
from modelops_drift.report import format_time, render_series_csv, render_summary_csv, render_table
from modelops_drift.series import DriftPoint
from modelops_drift.summary import DEFAULT_THRESHOLD, summarize
from modelops_drift.workspace import make_client, query_drift


def build_parser() -> argparse.ArgumentParser:
    """The command line: one source (a log file or a workspace), a service name, a window."""
    parser = argparse.ArgumentParser(
        prog="python -m modelops_drift",
        description="Per-feature drift p-values over time, from the prediction service's monitoring logs.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--log-file", help="log lines '<ts> <service> INFO - <json>' ('-' for stdin)")
    source.add_argument("--workspace-id", help="the Log Analytics workspace to query (Azure credentials)")
    parser.add_argument("--service-name", default=DEFAULT_SERVICE_NAME, help="default: %(default)s")
    parser.add_argument("--since", default=DEFAULT_SINCE, help="KQL timespan, default: %(default)s")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="a point counts as drifted below this p-value, default: %(default)s",
    )
    parser.add_argument(
        "--window",
        action="store_true",
        help="use the sliding-window drift test instead of the per-request one",
    )
    parser.add_argument("--format", choices=("table", "csv"), default="table", help="summary output format")
    parser.add_argument("--csv", type=Path, help="also write the series: timestamp, p-value per feature")
    parser.add_argument(
        "--plot",
        type=Path,
        help="also draw the time chart (per-request and window panels) to a .png or .svg file",
    )
    parser.add_argument("--endpoint", help="Log Analytics endpoint, for sovereign clouds")
    parser.add_argument("--show-query", action="store_true", help="print the KQL and exit")
    return parser


def read_log_points(
    args: argparse.Namespace, sources: Sequence[str], stdin: TextIO
) -> dict[str, list[DriftPoint]]:
    """Drift points per source from a log file (or stdin), within the window ending now."""
    cutoff = datetime.now(UTC) - parse_since(args.since)
    if args.log_file == "-":
        lines = stdin.readlines()
    else:
        with open(args.log_file, encoding="utf-8", errors="replace") as file:
            lines = file.readlines()
    return {source: read_points(lines, args.service_name, since=cutoff, source=source) for source in sources}


def read_workspace_points(
    args: argparse.Namespace, sources: Sequence[str], client: LogsQueryClient | None, stderr: TextIO
) -> dict[str, list[DriftPoint]]:
    """Drift points per source from Log Analytics (one query each); a partial result is used and reported."""
    client = client if client is not None else make_client(args.endpoint)
    points = {}
    for source in sources:
        result = query_drift(client, args.workspace_id, args.service_name, args.since, source)
        if result.partial_error is not None:
            stderr.write(f"warning: Log Analytics returned a partial result ({result.partial_error})\n")
        points[source] = result.points
    return points


def describe_chart(path: Path, panels: list[PanelSummary]) -> str:
    """One line per panel of a written chart: its points and where drift first showed."""
    lines = [f"wrote {path}"]
    for panel in panels:
        first = "no drift"
        if panel.first_drift_at is not None:
            first = (
                f"first drift {format_time(panel.first_drift_at)} ({', '.join(panel.first_drift_features)})"
            )
        lines.append(f"  {panel.source}: {panel.points} points, {panel.drifted_points} drifted; {first}")
    return "\n".join(lines) + "\n"


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    client: LogsQueryClient | None = None,
) -> int:
    """Run the command: 0 on success, 2 on a usage, file or Azure error; `client` overrides the default."""
    args = build_parser().parse_args(argv)
    try:
        parse_since(args.since)
        check_service_name(args.service_name)
        if args.show_query:
            source = "window" if args.window else "request"
            stdout.write(build_query(args.service_name, args.since, source) + "\n")
            return 0
        if args.plot is not None:
            check_chart_path(args.plot)
        selected = "window" if args.window else "request"
        sources = ["request", "window"] if args.plot is not None else [selected]
        if args.log_file is not None:
            series = read_log_points(args, sources, stdin)
        else:
            series = read_workspace_points(args, sources, client, stderr)
        points = series[selected]
    except (ValueError, OSError) as e:
        stderr.write(f"error: {e}\n")
        return 2
    except AzureError as e:
        stderr.write(f"error: Log Analytics query failed: {e}\n")
        return 2
    if not points:
        stderr.write(f"no monitoring_metrics events for {args.service_name} in the last {args.since}\n")
    summaries = summarize(points, args.threshold)
    stdout.write(render_table(summaries) if args.format == "table" else render_summary_csv(summaries))
    if args.csv is not None:
        args.csv.write_text(render_series_csv(points), encoding="utf-8")
    if args.plot is not None:
        try:
            panels = render_chart(series, args.plot, args.service_name, args.threshold)
        except OSError as e:
            stderr.write(f"error: {e}\n")
            return 2
        stderr.write(describe_chart(args.plot, panels))
    return 0
