"""`seedswarm validator`: run a validator node from its settings file."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from seedswarm.commands.miner import (
    ConfigOption,
    HttpHostOption,
    LogFormatOption,
    MetricsPortOption,
    StateOption,
    StatusOption,
)

DashboardPortOption = Annotated[
    int | None, typer.Option("--dashboard-port",
                             help="Serve the dashboard web page on this port (0: off)")
]


def validator(
    config: ConfigOption,
    state_dir: StateOption = None,
    status_file: StatusOption = None,
    metrics_port: MetricsPortOption = None,
    dashboard_port: DashboardPortOption = None,
    http_host: HttpHostOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run a validator: collect and screen contributions, certify rounds it leads, submit weights.

    Invalid, oversized, replayed and flooding messages are refused and counted per peer; the
    validator co-signs certificates it reproduces, commits and reveals its epoch weights
    on-chain exactly once (journaled), settles finished epochs, serves score receipts, and
    persists its ratings and epoch scores so a restart loses nothing. With --dashboard-port it
    serves a web page: leaderboard, loss curve, round timeline, refusals, receipts. Settings
    precedence: flags > SEEDSWARM_<KEY> environment > --config file.
    """
    from seedswarm.launch.runner import run_role

    flags = {"state_dir": state_dir, "status_file": status_file,
             "metrics_port": metrics_port, "dashboard_port": dashboard_port,
             "http_host": http_host, "log_format": log_format}
    run_role("validator", config, flags, os.environ)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm validator` to the CLI."""
    app.command("validator")(validator)
