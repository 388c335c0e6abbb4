"""The join bundle: one `network.toml` holding everything a node needs to join, nothing secret.

An operator writes it (`seedswarm network create`, `seedswarm devnet --export`); a joiner needs
it and nothing else (`seedswarm join --network network.toml`). Sections:

* ``[network]``: the consensus parameters (protocol.netconfig), exactly as digested, and
  ``digest`` beside them so a copy damaged or edited by hand is refused by name;
* ``[genesis]``: when round 0 starts, the genesis model's hash, where its checkpoint is (a path
  relative to the file; peers also serve it by hash) and the task data's fingerprint;
* ``[chain]``: the RPC URL, chain id, contract addresses, the deployment block, the minimum
  stakes (wei, as decimal strings: TOML integers stop at 2^63) and, on a devnet, a faucet URL;
* ``[peers]``: the transport, libp2p bootstrap multiaddrs and/or the MQTT broker URL (and,
  where the broker has accounts, the URL that issues them).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from adapters.chain.deployment import Deployment
from protocol.domain_types import EvmAddress
from protocol.errors import ConfigError
from protocol.netconfig import NetworkConfig

FORMAT = "seedswarm-network-1"
TRANSPORTS = ("libp2p", "mqtt")


@dataclass(frozen=True)
class GenesisInfo:
    """When and from what the network starts."""

    time: float
    """Unix seconds at which round 0 starts."""
    model_hash: str
    """Hex model hash of the genesis trainable tensors (= the network's base_checkpoint_hash)."""
    checkpoint: str = ""
    """The genesis checkpoint's path, relative to the bundle ("" = fetch it from peers)."""
    task_fingerprint: str = ""


@dataclass(frozen=True)
class ChainInfo:
    """Where the network's contracts are and what joining costs."""

    url: str
    chain_id: int
    token: EvmAddress
    registry: EvmAddress
    incentives: EvmAddress
    deployment_block: int = 0
    min_miner_stake: int = 0
    """Wei."""
    min_validator_stake: int = 0
    """Wei."""
    faucet: str = ""
    """Devnets only: an HTTP faucet that funds a new account (`seedswarm join --faucet`)."""

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.chain_id, self.token, self.registry, self.incentives)


@dataclass(frozen=True)
class PeerInfo:
    """How to reach the network's peers."""

    transport: str
    bootstrap: tuple[str, ...] = ()
    """libp2p multiaddrs of reachable nodes (/ip4/…/tcp/…/p2p/…)."""
    broker: str = ""
    """MQTT: the broker's URL, mqtt://host:port."""
    seeds: tuple[str, ...] = ()
    """Peer ids of the operator's always-on peers, asked first for the genesis checkpoint
    (libp2p: the bootstrap peers' ids are seeds too)."""
    accounts: str = ""
    """MQTT with broker accounts: the URL where a registered node gets its broker password
    by proving its node key (seedswarm.launch.broker_accounts; `seedswarm join` asks it)."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"peers.transport must be one of {TRANSPORTS}, "
                              f"got {self.transport!r}")
        if self.transport == "mqtt" and not self.broker.startswith("mqtt://"):
            raise ConfigError("peers.broker: an MQTT network needs mqtt://host:port")

    def seed_peers(self) -> tuple[str, ...]:
        """Every seed's peer id: the named seeds, then the bootstrap peers'."""
        ids = [*self.seeds, *(a.rsplit("/p2p/", 1)[-1] for a in self.bootstrap if "/p2p/" in a)]
        return tuple(dict.fromkeys(ids))

    @property
    def broker_host_port(self) -> tuple[str, int]:
        """(host, port) of the broker URL."""
        rest = self.broker.removeprefix("mqtt://").rstrip("/")
        host, _, port = rest.rpartition(":")
        try:
            return host or rest, int(port) if host else 1883
        except ValueError as exc:
            raise ConfigError(f"peers.broker: bad URL {self.broker!r}") from exc


@dataclass(frozen=True)
class JoinBundle:
    """The parsed `network.toml` (see the module docstring)."""

    network: NetworkConfig
    genesis: GenesisInfo
    chain: ChainInfo
    peers: PeerInfo

    def __post_init__(self) -> None:
        if self.genesis.model_hash != self.network.base_checkpoint_hash:
            raise ConfigError("genesis.model_hash differs from network.base_checkpoint_hash")

    def to_toml(self) -> str:
        """The bundle as TOML that `from_toml` reads back exactly."""
        net = self.network
        lines = ["# seedswarm network: everything a node needs to join (nothing secret).",
                 f"format = {_value(FORMAT)}", "", "[network]",
                 f"digest = {_value(net.digest().hex())}"]
        lines += net.to_toml().splitlines()[2:]  # after the header comment and format line
        lines += ["", "[genesis]", *_table(self.genesis.__dict__)]
        chain = dict(self.chain.__dict__)
        for name in ("min_miner_stake", "min_validator_stake"):
            chain[name] = str(chain[name])
        lines += ["", "[chain]", *_table(chain)]
        lines += ["", "[peers]", *_table(self.peers.__dict__)]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "network.toml") -> JoinBundle:
        """Parse a bundle; ConfigError naming the section and key at fault."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
        if raw.get("format") != FORMAT:
            raise ConfigError(f"{source}: format must be {FORMAT!r} (a network file written by "
                              "`seedswarm network create` or `seedswarm devnet --export`)")
        missing = [s for s in ("network", "genesis", "chain", "peers") if s not in raw]
        if missing:
            raise ConfigError(f"{source}: missing section(s) {missing}")
        rules = dict(raw["network"])
        digest = rules.pop("digest", None)
        network = NetworkConfig.from_toml(_network_toml(rules))
        if digest != network.digest().hex():
            raise ConfigError(
                f"{source}: [network] does not match its digest ({str(digest)[:16]}… written, "
                f"{network.digest().hex()[:16]}… computed): the parameters were edited; get the "
                "network's file again from its operator")
        chain = dict(raw["chain"])
        for name in ("min_miner_stake", "min_validator_stake"):
            chain[name] = _wei(chain.get(name, "0"), f"chain.{name}")
        for name in ("token", "registry", "incentives"):
            chain[name] = _address(chain.get(name), f"chain.{name}")
        peers = dict(raw["peers"])
        peers["bootstrap"] = tuple(peers.get("bootstrap", ()))
        peers["seeds"] = tuple(peers.get("seeds", ()))
        return cls(network, _build(GenesisInfo, raw["genesis"], "genesis"),
                   _build(ChainInfo, chain, "chain"), _build(PeerInfo, peers, "peers"))

    @classmethod
    def load(cls, path: Path) -> JoinBundle:
        """Read `path`; ConfigError with the cause when it cannot."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the network file {path}: {exc.strerror}") from exc
        return cls.from_toml(text, str(path))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml(), encoding="utf-8")

    def checkpoint_path(self, bundle_file: Path) -> Path | None:
        """The genesis checkpoint next to the bundle file, if the bundle names one."""
        if not self.genesis.checkpoint:
            return None
        return (bundle_file.parent / self.genesis.checkpoint).resolve()


def is_join_bundle(path: Path) -> bool:
    """True if `path` is a join bundle (rather than a bare network config)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _network_toml(rules: dict[str, Any]) -> str:
    from protocol.netconfig import FORMAT_VERSION

    return f"format = {FORMAT_VERSION}\n" + "".join(
        f"{k} = {_value(v)}\n" for k, v in rules.items())


def _wei(value: Any, name: str) -> int:
    try:
        amount = int(str(value))
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an amount in wei, got {value!r}") from exc
    if amount < 0:
        raise ConfigError(f"{name}: must be >= 0")
    return amount


def _address(value: Any, name: str) -> EvmAddress:
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"{name}: expected a 0x-prefixed 20-byte address, got {value!r}")
    return EvmAddress(to_checksum_address(value))


def _build(cls: type[Any], table: dict[str, Any], section: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {unknown}")
    try:
        return cls(**table)
    except TypeError as exc:
        raise ConfigError(f"[{section}]: {exc}") from exc


def _table(values: dict[str, Any]) -> list[str]:
    return [f"{k} = {_value(v)}" for k, v in values.items()]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)
