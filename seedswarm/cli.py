"""The `seedswarm` command line.

Each command lives in its own module under `seedswarm.commands` and imports heavy libraries
(torch, web3, libp2p) inside the command body, so `seedswarm --help` stays instant.
"""

from __future__ import annotations

import importlib
import sys

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
    "stake",
    "slash",
    "rewards",
    "status",
    "receipts",
    "doctor",
    "pretrain",
    "join",
    "network",
)


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(f"seedswarm.commands.{name}").register(app)


_DEBUG = {"traceback": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    """seedswarm: collaborative training paid for by measured improvement."""
    _DEBUG["traceback"] = debug


@app.command()
def version() -> None:
    """Print the installed seedswarm version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("seedswarm"))


_register_commands()


def main() -> None:
    """Run the CLI; an error of the project's own is one line on stderr and exit status 1
    (`seedswarm --debug ...` shows its traceback instead)."""
    import warnings

    from protocol.errors import SeedswarmError

    # third-party libraries announce their own deprecations; a user can do nothing about them
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        app()
    except SeedswarmError as exc:
        if _DEBUG["traceback"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
