"""Running one node process: settings file + environment + flags, logging, then the node.

`seedswarm miner` and `seedswarm validator` call `run_role`; the devnet's node processes call
`run_from_settings` with the miner they inject (seedswarm.devnet.node_process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocol.errors import ConfigError, SeedswarmError
from seedswarm.launch.compose import MinerFactory, Sidecar, honest_miner, run_node
from seedswarm.launch.log_format import formatter
from seedswarm.launch.settings import PASSWORD_FILE_ENV, NodeSettings, load_settings, password_from
from seedswarm.launch.single_instance import hold

PASSWORD_ENV = "SEEDSWARM_PASSWORD"


def configure_logging(settings: NodeSettings) -> None:
    """Log to the settings' log file (or stderr), one line per record, as text or JSON
    (seedswarm.launch.log_format)."""
    handler: logging.Handler
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.log_file)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings.log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("libp2p", "multiaddr", "amqtt", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_from_settings(
    settings: NodeSettings, env: Mapping[str, str], *, miner: MinerFactory = honest_miner,
    sidecars: Sequence[Sidecar] = (),
) -> None:
    """Run the node described by `settings` until SIGTERM / SIGINT (see `run_node`)."""

    password = password_from(env)
    if password is None:
        raise ConfigError(f"set {PASSWORD_ENV} to the keystore password (or "
                          f"{PASSWORD_FILE_ENV} to a file holding it)")
    keystore_dir = settings.keystore if settings.keystore.is_dir() else settings.keystore.parent
    with hold(settings.state_dir, keystore_dir):
        configure_logging(settings)
        try:
            with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
                asyncio.run(run_node(settings, password, miner=miner, sidecars=sidecars))
        except BaseExceptionGroup as group:
            # the node's tasks run in a task group: report the cause, not the group
            cause = first_error(group)
            if cause is None:
                raise
            logging.getLogger("seedswarm.launch").error("node stopped: %s", cause)
            raise cause from group


def first_error(group: BaseExceptionGroup[BaseException]) -> SeedswarmError | None:
    """The first of the project's own errors inside `group` (nested groups included)."""
    for exc in group.exceptions:
        if isinstance(exc, SeedswarmError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = first_error(exc)
            if found is not None:
                return found
    return None


def run_role(role: str, config: Path, flags: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """`seedswarm miner` / `seedswarm validator`: settings file + environment + flags, run."""
    from protocol.errors import ConfigError

    settings = load_settings(config, flags=flags, env=env)
    if settings.role != role:
        raise ConfigError(f"{config} describes a {settings.role}, not a {role}")
    run_from_settings(settings, env)
