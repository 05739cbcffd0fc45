"""`python -m modelops_drift`: drift over time from Log Analytics or from local log lines."""

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from azure.core.exceptions import AzureError
from azure.monitor.query import LogsQueryClient

from modelops_drift.logs import read_points
from modelops_drift.query import (
    DEFAULT_SERVICE_NAME,
    DEFAULT_SINCE,
    build_query,
    check_service_name,
    parse_since,
)
from modelops_drift.report import render_series_csv, render_summary_csv, render_table
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
    parser.add_argument("--endpoint", help="Log Analytics endpoint, for sovereign clouds")
    parser.add_argument("--show-query", action="store_true", help="print the KQL and exit")
    return parser


def read_log_points(args: argparse.Namespace, stdin: TextIO) -> list[DriftPoint]:
    """Drift points from a log file (or stdin), within the window ending now."""
    cutoff = datetime.now(UTC) - parse_since(args.since)
    source = "window" if args.window else "request"
    if args.log_file == "-":
        return read_points(stdin, args.service_name, since=cutoff, source=source)
    with open(args.log_file, encoding="utf-8", errors="replace") as lines:
        return read_points(lines, args.service_name, since=cutoff, source=source)


def read_workspace_points(
    args: argparse.Namespace, client: LogsQueryClient | None, stderr: TextIO
) -> list[DriftPoint]:
    """Drift points from Log Analytics; a partial result is used and reported."""
    client = client if client is not None else make_client(args.endpoint)
    source = "window" if args.window else "request"
    result = query_drift(client, args.workspace_id, args.service_name, args.since, source)
    if result.partial_error is not None:
        stderr.write(f"warning: Log Analytics returned a partial result ({result.partial_error})\n")
    return result.points


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
        if args.log_file is not None:
            points = read_log_points(args, stdin)
        else:
            points = read_workspace_points(args, client, stderr)
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
    return 0
