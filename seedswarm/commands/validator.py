"""`seedswarm validator`: run a validator node from its settings file."""

from __future__ import annotations

import os

import typer

from seedswarm.commands.miner import ConfigOption, StateOption, StatusOption, TransportOption


def validator(
    config: ConfigOption,
    state_dir: StateOption = None,
    transport: TransportOption = None,
    status_file: StatusOption = None,
) -> None:
    """Run a validator: collect and screen contributions, certify rounds it leads, submit weights.

    Invalid, oversized, replayed and flooding messages are refused and counted per peer; the
    validator co-signs certificates it reproduces, commits and reveals its epoch weights
    on-chain exactly once (journaled), settles finished epochs, serves score receipts, and
    persists its ratings and epoch scores so a restart loses nothing. Settings precedence:
    flags > SEEDSWARM_<KEY> environment > --config file.
    """
    from seedswarm.launch.runner import run_role

    flags = {"state_dir": state_dir, "transport": transport, "status_file": status_file}
    run_role("validator", config, flags, os.environ)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm validator` to the CLI."""
    app.command("validator")(validator)
