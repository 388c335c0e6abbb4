"""The consensus parameters of a network: what every node must share, and its digest.

A network is defined by a small flat TOML file. Two nodes are on the same network only if
their configurations have the same ``digest()``, which covers every field in a canonical
text form (comments and formatting of the input file do not matter).

This is the one place a network parameter has its default (``rule_default`` reads it for the
simulator's and the devnet's options), and ``build_network`` the one builder every tool uses.
The outer learning rate's default depends on the codec (``DEFAULT_OUTER_LR``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.codecs import Codec
from protocol.domain_types import ModelHash
from protocol.encoding import MAX_MESSAGE_BYTES
from protocol.errors import ConfigError
from protocol.messages import MAX_CERT_ENTRIES, MAX_RANK, MAX_SCALARS
from protocol.outer import check_momentum
from protocol.perturb import DirectionKind, DirectionSpec

FORMAT_VERSION = 2
HEADER_ALLOWANCE = 1024  # bytes a contribution needs besides its scalar codes
MAX_MESSAGE_LIMIT = MAX_MESSAGE_BYTES  # envelopes never exceed it, whatever the config says
MAX_SPEC_CHARS = 256
_NETWORK_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_PERSON_DIGEST = b"ss:netconfig"


@dataclass(frozen=True)
class NetworkConfig:
    """Consensus parameters. The genesis (id, base model, task, trainable) has no default; every
    rule's default here is the network's (see the module docstring)."""

    network_id: str
    base_checkpoint_hash: str  # hex of protocol.model_hash of the starting trainable tensors
    task: str
    """The training task's spec (training.tasks): part of the genesis, like the base model."""
    trainable: str
    """What of the base model trains (training.trainable): part of the genesis too."""
    codec: Codec = Codec.FO
    direction: DirectionSpec = field(default_factory=DirectionSpec)
    scalars: int = 1024
    """K: scalars (one byte each) per contribution."""
    spsa_eps: float = 1e-3
    outer_lr: float = math.nan
    """The step applied to the averaged update; NaN (not given): the codec's default."""
    outer_momentum: float = 0.0
    """Nesterov momentum of the outer step (protocol.outer); 0: plain SGD."""
    samples_per_miner: int = 16
    max_contributions_per_round: int = 32
    data_seed: int = 0
    round_length: float = 30.0
    """Seconds per round."""
    epoch_length: int = 20
    """Rounds per reward epoch."""
    max_message_bytes: int = 64 * 1024
    local_steps: int = 4
    """FO: local AdamW steps a miner takes (and a validator redoes) per round."""
    local_lr: float = 1e-2
    """FO: the local AdamW learning rate."""
    local_weight_decay: float = 0.0
    """FO: the local AdamW weight decay."""

    def __post_init__(self) -> None:
        _check_pattern("network_id", self.network_id, _NETWORK_ID)
        _check_pattern("base_checkpoint_hash", self.base_checkpoint_hash, _HASH_HEX)
        _check_spec_string("task", self.task)
        _check_spec_string("trainable", self.trainable)
        if not isinstance(self.codec, Codec):
            raise ConfigError(f"codec: expected a Codec, got {self.codec!r}")
        if not isinstance(self.direction, DirectionSpec):
            raise ConfigError(f"direction: expected a DirectionSpec, got {self.direction!r}")
        _check_int("direction_rank", self.direction.rank, 1, MAX_RANK)
        _check_int("scalars", self.scalars, 1, MAX_SCALARS)
        if isinstance(self.outer_lr, float) and math.isnan(self.outer_lr):
            object.__setattr__(self, "outer_lr", DEFAULT_OUTER_LR[self.codec])
        object.__setattr__(self, "outer_momentum", check_momentum(self.outer_momentum))
        for name in ("spsa_eps", "outer_lr", "round_length"):
            _check_positive(name, getattr(self, name))
            # An int here would print differently in the canonical form and change the digest.
            object.__setattr__(self, name, float(getattr(self, name)))
        _check_int("samples_per_miner", self.samples_per_miner, 1, 2**32)
        _check_int("max_contributions_per_round", self.max_contributions_per_round, 1,
                   MAX_CERT_ENTRIES)
        _check_int("data_seed", self.data_seed, 0, 2**63 - 1)
        _check_int("epoch_length", self.epoch_length, 1, 2**32)
        _check_int("max_message_bytes", self.max_message_bytes,
                   self.scalars + HEADER_ALLOWANCE, MAX_MESSAGE_LIMIT)
        _check_int("local_steps", self.local_steps, 1, 2**16)
        _check_positive("local_lr", self.local_lr)
        _check_nonnegative("local_weight_decay", self.local_weight_decay)
        for name in ("local_lr", "local_weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def base_checkpoint_digest(self) -> ModelHash:
        """The 32-byte model hash of the starting point."""
        return ModelHash(bytes.fromhex(self.base_checkpoint_hash))

    def to_toml(self) -> str:
        """The configuration as a flat TOML document (canonical: fixed order and formatting)."""
        header = "# seedswarm network configuration: every node of the network must use it as is\n"
        return header + "".join(f"{key} = {value}\n" for key, value in self._canonical_items())

    @classmethod
    def from_toml(cls, text: str) -> NetworkConfig:
        """Parse ``to_toml``'s format. Raises ConfigError naming the offending key."""
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"network config is not valid TOML: {exc}") from exc
        if table.pop("format", None) != FORMAT_VERSION:
            raise ConfigError(f"format: expected {FORMAT_VERSION}")
        kwargs = _typed_fields(table)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required key is missing
            raise ConfigError(f"network config: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> NetworkConfig:
        """Read a network file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read network config {path}: {exc}") from exc
        return cls.from_toml(text)

    def digest(self) -> bytes:
        """32-byte hash of the canonical form: equal digests mean the same network."""
        body = "".join(f"{key} = {value}\n" for key, value in self._canonical_items())
        return hashlib.blake2b(body.encode("utf-8"), digest_size=32,
                               person=_PERSON_DIGEST).digest()

    def _canonical_items(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = [("format", str(FORMAT_VERSION))]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "direction":
                items.append(("direction", _toml_value(value.kind.value)))
                items.append(("direction_rank", _toml_value(value.rank)))
            elif f.name == "codec":
                items.append(("codec", _toml_value(value.value)))
            else:
                items.append((f.name, _toml_value(value)))
        return items


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # printable text: JSON escapes are TOML's
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form, always with '.', 'e' or both
    return str(value)


DEFAULT_OUTER_LR = {Codec.FO: 0.5, Codec.ZO: 3.0}
"""The outer learning rate when a network does not set one. Measured on pycode:finetune /
lora:4 / 8 miners (bench/convergence.py): FO applies an unbiased reconstruction of each
miner's local AdamW update and 0.5 damps the projection noise (1.0 reached the same loss less
smoothly, 2.0 diverged); ZO's scalars are raw gradient projections of a LoRA whose gradients
are tiny, so it needs a large step (3 with 8x32 scalars; 10 diverged)."""

CONTRIBUTION_CAPACITY = (32, MAX_CERT_ENTRIES)
"""A network admits at least 32 contributions per round, one per miner beyond that, at most
as many as a certificate can carry."""


def rule_default(name: str) -> Any:
    """The default of network parameter ``name`` (NaN for the outer learning rate: the codec's)."""
    spec = {f.name: f for f in dataclasses.fields(NetworkConfig)}.get(name)
    if spec is None:
        raise ConfigError(f"{name}: not a network parameter")
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def build_network(
    network_id: str, base_hash: ModelHash, *, task: str, trainable: str, miners: int,
    **rules: Any,
) -> NetworkConfig:
    """The parameters of a network starting from the model hashed ``base_hash``, sized for
    ``miners``; each rule in ``rules`` left None takes its default. The one builder the
    simulator, the devnet and the network commands share."""
    names = {f.name for f in dataclasses.fields(NetworkConfig)}
    unknown = sorted(set(rules) - names)
    if unknown:
        raise ConfigError(f"unknown network parameters: {unknown}")
    low, high = CONTRIBUTION_CAPACITY
    given = {k: v for k, v in rules.items() if v is not None}
    given.setdefault("max_contributions_per_round", min(high, max(low, miners)))
    return NetworkConfig(network_id=network_id, base_checkpoint_hash=base_hash.hex(),
                         task=task, trainable=trainable, **given)

_SCALAR_TYPES: dict[str, type] = {"str": str, "int": int, "float": float}


def _typed_fields(table: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for NetworkConfig from a parsed TOML table, type-checked by key."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(NetworkConfig)}
    kwargs: dict[str, Any] = {}
    kind_name = table.pop("direction", DirectionKind.GAUSSIAN.value)
    rank = table.pop("direction_rank", 1)
    try:
        kwargs["direction"] = DirectionSpec(DirectionKind(kind_name), _expect("direction_rank",
                                                                              rank, int))
    except ValueError as exc:
        raise ConfigError(f"direction: unknown kind {kind_name!r}") from exc
    for key, value in table.items():
        if key not in kinds or key == "direction":
            raise ConfigError(f"{key}: unknown key")
        if key == "codec":
            try:
                kwargs[key] = Codec(_expect(key, value, str))
            except ValueError as exc:
                raise ConfigError(f"codec: unknown codec {value!r}") from exc
        else:
            kwargs[key] = _expect(key, value, _SCALAR_TYPES[kinds[key]])
    return kwargs


def _expect(key: str, value: object, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def _check_pattern(name: str, value: object, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ConfigError(f"{name}: invalid value {value!r} (must match {pattern.pattern})")


def _check_spec_string(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_SPEC_CHARS:
        raise ConfigError(f"{name}: must be 1 to {MAX_SPEC_CHARS} characters")
    if not value.isprintable():
        raise ConfigError(f"{name}: must be printable text")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")


def _check_nonnegative(name: str, value: object) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < 0):
        raise ConfigError(f"{name}: expected a finite number >= 0, got {value!r}")


def _check_positive(name: str, value: object) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise ConfigError(f"{name}: expected a finite positive number, got {value!r}")
