"""A node's settings file: where its keys, state and network are, and how it connects.

One flat TOML table per node (the devnet writes one for every node it starts; operators write
their own). Values are resolved with the precedence command-line flag > environment variable
(SEEDSWARM_<KEY>) > file; only the CLI reads the environment and passes it in as a mapping.
Relative paths are relative to the settings file.

Membership (registered miners, validators and their stakes) comes from the Registry contract
when `chain` and `deployment` are set (seedswarm.launch.membership_source); the `miners` and
`validators` lists are only the fallback for chainless runs and are ignored otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ConfigError

ROLES = ("miner", "validator")
TRANSPORTS = ("mqtt", "libp2p")
_PATH_FIELDS = ("network", "base_checkpoint", "keystore", "state_dir", "status_file",
                "deployment", "log_file")
ENV_PREFIX = "SEEDSWARM_"


@dataclass(frozen=True)
class NodeSettings:
    """Everything `seedswarm miner` / `seedswarm validator` need to start."""

    role: str
    network: Path
    base_checkpoint: Path
    keystore: Path
    state_dir: Path
    genesis_time: float
    transport: str = "mqtt"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    listen_port: int = 0
    bootstrap: tuple[str, ...] = ()
    chain: str = ""
    deployment: Path | None = None
    miners: tuple[str, ...] = ()
    """Chainless runs only: hex Ed25519 public keys of the miners (else read from the chain)."""
    validators: tuple[tuple[str, int], ...] = ()
    """Chainless runs only: (hex public key, stake in wei) of the validators."""
    peers: tuple[str, ...] = ()
    """Peer ids to fetch the certified log from."""
    work_fraction: float = 0.6
    last_round: int = -1
    """-1: run forever."""
    status_file: Path | None = None
    log_file: Path | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if not self.validators and not (self.chain and self.deployment is not None):
            raise ConfigError("validators: a node without chain + deployment needs at least one")

    def to_toml(self) -> str:
        """The settings as a TOML document `load_settings` reads back."""
        lines = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            lines.append(f"{f.name} = {_toml(value)}")
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def load_settings(
    path: Path, *, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> NodeSettings:
    """Read `path`, then apply environment values, then flags (highest precedence)."""
    try:
        table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read node settings {path}: {exc}") from exc
    names = {f.name: f for f in dataclasses.fields(NodeSettings)}
    for key, raw in (env or {}).items():
        name = key.removeprefix(ENV_PREFIX).lower()
        if key.startswith(ENV_PREFIX) and name in names:
            table[name] = _from_env(raw, table.get(name))
    table.update({k: v for k, v in (flags or {}).items() if v is not None})
    unknown = set(table) - set(names)
    if unknown:
        raise ConfigError(f"unknown node settings: {sorted(unknown)}")
    base = path.parent
    for name in _PATH_FIELDS:
        if table.get(name) not in (None, ""):
            table[name] = (base / Path(str(table[name]))).resolve()
    for name in ("bootstrap", "miners", "peers"):
        table[name] = tuple(table.get(name, ()))
    table["validators"] = tuple((str(k), int(s)) for k, s in table.get("validators", ()))
    try:
        return NodeSettings(**table)
    except TypeError as exc:
        raise ConfigError(f"node settings {path}: {exc}") from exc


def _from_env(raw: str, current: Any) -> Any:
    """An environment string typed like the file's value it replaces."""
    if isinstance(current, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return raw
