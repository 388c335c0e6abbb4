"""The `seedswarm` command line.

Each command lives in its own module under `seedswarm.commands` and imports heavy libraries
(torch, web3, libp2p) inside the command body, so `seedswarm --help` stays instant.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="seedswarm",
    help=(
        "seedswarm: collaborative training paid for by measured improvement.\n\n"
        "Miners exchange (seed, scalar) lists instead of gradients; validators verify and score "
        "them and settle rewards on an EVM chain."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

_COMMAND_MODULES = (
    "devnet",
    "simulate",
    "miner",
    "validator",
    "keys",
    "chain",
    "pretrain",
)


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(f"seedswarm.commands.{name}").register(app)


@app.callback()
def _root() -> None:
    """Keeps `seedswarm` a command group even while it has a single command."""


@app.command()
def version() -> None:
    """Print the installed seedswarm version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("seedswarm"))


_register_commands()


def main() -> None:
    app()
