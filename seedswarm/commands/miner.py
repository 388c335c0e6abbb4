"""`seedswarm miner`: run a miner node from its settings file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path, typer.Option("--config", help="Node settings TOML (written by `seedswarm join`, or "
                       "your own); the transport, chain and peers come from its network file")
]
StateOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Checkpoint and certified log directory")
]
StatusOption = Annotated[Path | None, typer.Option("--status-file", help="JSON status snapshot")]
MetricsPortOption = Annotated[
    int | None, typer.Option("--metrics-port",
                             help="Serve /metrics, /healthz and /readyz on this port (0: off)")
]
HttpHostOption = Annotated[
    str | None, typer.Option("--http-host", help="Address the metrics (and dashboard) pages "
                             "listen on [default: 127.0.0.1]")
]
LogFormatOption = Annotated[
    str | None, typer.Option("--log-format", help="text (one line per round) or json")
]


def miner(
    config: ConfigOption,
    state_dir: StateOption = None,
    status_file: StatusOption = None,
    metrics_port: MetricsPortOption = None,
    http_host: HttpHostOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run a miner: each round, compute scalars on the certified model and publish them.

    The miner follows the certified history (applying every round's certificate and checking
    the model hash), keeps a checkpoint and the certified log on disk, and after a crash or a
    restart catches up from its checkpoint and its peers' logs. Settings come from --config,
    overridden by SEEDSWARM_<KEY> environment variables, overridden by these flags; the
    keystore password comes from SEEDSWARM_PASSWORD.
    """
    from seedswarm.launch.runner import run_role

    flags = {"state_dir": state_dir, "status_file": status_file,
             "metrics_port": metrics_port, "http_host": http_host, "log_format": log_format}
    run_role("miner", config, flags, os.environ)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm miner` to the CLI."""
    app.command("miner")(miner)
