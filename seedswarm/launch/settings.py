"""A node's settings file: what is this node's own (keys, state, ports), and which network.

One flat TOML table per node. Everything the network shares — its rules, genesis, chain and
peers — is in the join bundle the `network` key points to (seedswarm.launch.join_bundle); the
settings only hold what belongs to this node, and may override how it reaches the chain and
the broker (another address for the same endpoint, from where this node runs). `seedswarm join`
and the devnet write one for every node they start; operators may write their own.

Values are resolved with the precedence command-line flag > environment variable
(SEEDSWARM_<KEY>) > file; only the CLI reads the environment and passes it in as a mapping.
Relative paths are relative to the settings file.

Ports a node serves for people and tools (`metrics_port`, `dashboard_port`) are off at 0: two
nodes on one machine cannot share a port, so an operator chooses them (the devnet picks free
ones and lists them in its endpoints.json); the same port for both serves both on one server.
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
LOG_FORMATS = ("text", "json")
_PATH_FIELDS = ("network", "keystore", "state_dir", "status_file", "log_file")
_TUPLE_FIELDS = ("bootstrap", "peers")
ENV_PREFIX = "SEEDSWARM_"
PASSWORD_ENV = "SEEDSWARM_PASSWORD"
DEFAULT_WORK_FRACTION = 0.6


@dataclass(frozen=True)
class NodeSettings:
    """Everything `seedswarm miner` / `seedswarm validator` need to start."""

    role: str
    network: Path
    """The network's join bundle (network.toml)."""
    keystore: Path
    """The node's encrypted keystore: a file, or a directory holding keystore.json."""
    state_dir: Path
    """Checkpoints, the certified log and the node's books."""
    listen_host: str = "127.0.0.1"
    """libp2p: the address to listen on (0.0.0.0 for every interface)."""
    listen_port: int = 0
    """libp2p: the TCP port to listen on (0: any free port)."""
    chain: str = ""
    """Overrides the bundle's RPC URL (the same chain, reached another way)."""
    broker: str = ""
    """MQTT: overrides the bundle's broker URL (mqtt://host:port)."""
    broker_password: str = dataclasses.field(default="", repr=False)
    """MQTT: this node's broker account password, where the broker has accounts (a
    deployment's mosquitto; the user name is the node's peer id): best given as
    $SEEDSWARM_BROKER_PASSWORD. Empty: connect anonymously."""
    bootstrap: tuple[str, ...] = ()
    """libp2p: multiaddrs dialled besides the bundle's bootstrap peers."""
    peers: tuple[str, ...] = ()
    """Peer ids to fetch the certified log from (default: every registered node)."""
    work_fraction: float = DEFAULT_WORK_FRACTION
    """The part of each round given to the miners' work (the rest: scoring, certifying)."""
    last_round: int = -1
    """-1: run forever."""
    status_file: Path | None = None
    log_file: Path | None = None
    log_format: str = "text"
    """text: one human line per event (one per final round at INFO); json: one JSON object
    per line, for log collectors."""
    http_host: str = "127.0.0.1"
    """The address the metrics, health and dashboard pages listen on (0.0.0.0: every
    interface, e.g. in a container)."""
    metrics_port: int = 0
    """Prometheus metrics (/metrics), /healthz and /readyz on this TCP port (0: off)."""
    dashboard_port: int = 0
    """Validators: the dashboard web page (/) on this TCP port (0: off)."""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {ROLES}, got {self.role!r}")
        for name in ("listen_port", "metrics_port", "dashboard_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65_535:
                raise ConfigError(f"{name} must be a TCP port (0: off), got {port}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {LOG_FORMATS}, got "
                              f"{self.log_format!r}")
        if self.role == "miner" and self.dashboard_port:
            raise ConfigError("dashboard_port: only validators serve a dashboard; remove it "
                              "from the miner's settings (its metrics are on metrics_port)")
        if not 0.0 < self.work_fraction < 1.0:
            raise ConfigError(f"work_fraction must be in (0, 1), got {self.work_fraction}")

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


def with_overrides(
    settings: NodeSettings, *, flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> NodeSettings:
    """`settings` with environment values, then flags (highest precedence) applied: for
    settings built in code (`seedswarm join`) rather than read from a file."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(NodeSettings)}
    changes: dict[str, Any] = {}
    for key, raw in (env or {}).items():
        name = key.removeprefix(ENV_PREFIX).lower()
        if key.startswith(ENV_PREFIX) and name in kinds and name not in _PATH_FIELDS:
            changes[name] = _from_env(raw, kinds[name], key)
    changes.update({k: v for k, v in (flags or {}).items() if v is not None})
    unknown = sorted(set(changes) - set(kinds))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}; known: {sorted(kinds)}")
    for name in _TUPLE_FIELDS:
        if name in changes:
            changes[name] = tuple(str(v) for v in changes[name])
    return dataclasses.replace(settings, **changes)


def load_settings(
    path: Path, *, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> NodeSettings:
    """Read `path`, then apply environment values, then flags (highest precedence)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read node settings {path}: {exc.strerror}") from exc
    try:
        table: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"node settings {path} is not valid TOML: {exc}") from exc
    kinds = {f.name: str(f.type) for f in dataclasses.fields(NodeSettings)}
    unknown = sorted(set(table) - set(kinds))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; known: {sorted(kinds)}")
    for key, raw in (env or {}).items():
        name = key.removeprefix(ENV_PREFIX).lower()
        if key.startswith(ENV_PREFIX) and name in kinds:
            table[name] = _from_env(raw, kinds[name], key)
    table.update({k: v for k, v in (flags or {}).items() if v is not None})
    missing = sorted(f.name for f in dataclasses.fields(NodeSettings)
                     if f.default is dataclasses.MISSING and f.name not in table)
    if missing:
        raise ConfigError(f"{path}: missing setting(s) {missing}")
    base = path.parent
    for name in _PATH_FIELDS:
        if table.get(name) not in (None, ""):
            table[name] = (base / Path(str(table[name]))).resolve()
    for name in _TUPLE_FIELDS:
        table[name] = tuple(str(v) for v in table.get(name, ()))
    try:
        return NodeSettings(**table)
    except TypeError as exc:
        raise ConfigError(f"node settings {path}: {exc}") from exc


def _from_env(raw: str, kind: str, key: str) -> Any:
    """An environment string typed like the setting it replaces."""
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}: expected {kind}, got {raw!r}") from exc
    if kind.startswith("tuple"):
        return tuple(v for v in raw.split(",") if v)
    return raw


PASSWORD_FILE_ENV = "SEEDSWARM_PASSWORD_FILE"


def password_from(env: Mapping[str, str]) -> str | None:
    """The keystore password: $SEEDSWARM_PASSWORD, else the contents of the file
    $SEEDSWARM_PASSWORD_FILE names (a container or systemd secret; one trailing newline
    dropped), else None."""
    if PASSWORD_ENV in env:
        return env[PASSWORD_ENV]
    path = env.get(PASSWORD_FILE_ENV)
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{PASSWORD_FILE_ENV}={path}: cannot read it ({exc.strerror}): "
                          "mount the secret there or unset the variable") from exc
    return text.removesuffix("\n").removesuffix("\r")
