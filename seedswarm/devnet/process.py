"""Entry point of one node process: `python -m seedswarm.devnet.process --config FILE`.

The devnet starts every node this way (it needs nothing wired into the `seedswarm` CLI);
`seedswarm miner` and `seedswarm validator` call `run_from_settings` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seedswarm.devnet.settings import NodeSettings, load_settings

PASSWORD_ENV = "SEEDSWARM_PASSWORD"


def configure_logging(settings: NodeSettings) -> None:
    """Log to the settings' log file (or stderr), one line per record."""
    handler: logging.Handler
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.log_file)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("libp2p", "multiaddr", "amqtt", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_from_settings(settings: NodeSettings, env: Mapping[str, str]) -> None:
    """Run the node described by `settings` until SIGTERM / SIGINT."""
    from seedswarm.devnet.compose import run_node

    password = env.get(PASSWORD_ENV)
    if password is None:
        raise SystemExit(f"set {PASSWORD_ENV} to the keystore password")
    configure_logging(settings)
    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run_node(settings, password))


def run_role(role: str, config: Path, flags: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """`seedswarm miner` / `seedswarm validator`: settings file + environment + flags, run."""
    from protocol.errors import ConfigError

    settings = load_settings(config, flags=flags, env=env)
    if settings.role != role:
        raise ConfigError(f"{config} describes a {settings.role}, not a {role}")
    run_from_settings(settings, env)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    flags: dict[str, Any] = {}
    settings = load_settings(args.config, flags=flags, env=os.environ)
    run_from_settings(settings, os.environ)


if __name__ == "__main__":
    main()
