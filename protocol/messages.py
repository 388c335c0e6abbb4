"""The protocol's wire messages: frozen, validated on construction, one closed union.

Every top-level message carries the fields replay protection needs (`network_id`,
`round_index`, `sequence`) and names its author (`author`), whose Ed25519 key must have signed
it (see protocol.signing). Constructing a message with a field outside its bounds raises
MessageRejected, so a decoded message is always a valid one.

Weights are fixed-point integers in parts per billion (1e-9), so that certificates are exact.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.errors import MessageRejected, RejectReason

# Per-field bounds. They keep every valid message well under encoding.MAX_MESSAGE_BYTES.
MAX_SCALARS = 4096  # scalars (one code byte each) per contribution
MAX_BLOCKS = 1024  # parameter blocks (tensors) a first-order contribution may spread over
MAX_RANK = 1024
MAX_CERT_ENTRIES = 512
MAX_REASON_CHARS = 256
MAX_UINT64 = 2**64 - 1
MAX_UINT32 = 2**32 - 1
WEIGHT_ONE_PPB = 10**9  # a weight of 1.0
HASH_BYTES = 32
KEY_BYTES = 32

CODECS: tuple[str, ...] = ("zo", "fo")
DIRECTIONS: tuple[str, ...] = ("gaussian", "rademacher", "lowrank")

_NETWORK_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_network_id(value: str) -> None:
    """1-64 characters of [A-Za-z0-9._:-]: domain strings built from it stay unambiguous."""
    if not isinstance(value, str) or _NETWORK_ID.fullmatch(value) is None:
        raise MessageRejected(RejectReason.MALFORMED, f"invalid network id {value!r}")


def _check_fixed_bytes(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise MessageRejected(RejectReason.MALFORMED, f"{name} must be {size} bytes")


def _check_uint(name: str, value: int, maximum: int, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageRejected(RejectReason.MALFORMED, f"{name} must be an integer")
    if not minimum <= value <= maximum:
        raise MessageRejected(
            RejectReason.OUT_OF_BOUNDS, f"{name}={value} outside [{minimum}, {maximum}]"
        )


def _finite(name: str, value: float, *, minimum: float = -math.inf) -> float:
    """The value as a float (ints are accepted, as the type system allows them)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MessageRejected(RejectReason.MALFORMED, f"{name} must be a float")
    if not math.isfinite(value):
        raise MessageRejected(RejectReason.MALFORMED, f"{name} must be finite")
    if value < minimum:
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS, f"{name}={value} below {minimum}")
    return float(value)


def _check_text(name: str, value: str, max_chars: int) -> None:
    if not isinstance(value, str):
        raise MessageRejected(RejectReason.MALFORMED, f"{name} must be a string")
    if len(value) > max_chars:
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS, f"{name} longer than {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MessageRejected(RejectReason.MALFORMED, f"{name} is not valid Unicode") from None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MessageRejected(RejectReason.MALFORMED, f"{name}={value!r} not in {choices}")


def _check_header(network_id: str, round_index: int, sequence: int) -> None:
    check_network_id(network_id)
    _check_uint("round_index", round_index, MAX_UINT64)
    _check_uint("sequence", sequence, MAX_UINT64)


@dataclass(frozen=True)
class Contribution:
    """A miner's pseudo-gradient for one round: quantized scalars for protocol-derived seeds.

    ZO: one scalar per seed over the whole trainable vector, `block_counts` empty.
    FO: `block_counts[b]` scalars on tensor b, summing to the number of scalars.
    """

    TYPE_NAME: ClassVar[str] = "contribution"

    network_id: str
    round_index: int
    sender: PublicKey
    sequence: int
    base_model_hash: ModelHash
    codec: str
    direction: str
    rank: int
    block_counts: tuple[int, ...]
    scale: float
    codes: bytes
    compute_ms: int

    def __post_init__(self) -> None:
        _check_header(self.network_id, self.round_index, self.sequence)
        _check_fixed_bytes("sender", self.sender, KEY_BYTES)
        _check_fixed_bytes("base_model_hash", self.base_model_hash, HASH_BYTES)
        _check_choice("codec", self.codec, CODECS)
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_uint("rank", self.rank, MAX_RANK, minimum=1)
        object.__setattr__(self, "scale", _finite("scale", self.scale, minimum=0.0))
        if math.copysign(1.0, self.scale) < 0.0:
            # -0.0 == 0.0 but encodes differently: two digests for one contribution.
            raise MessageRejected(RejectReason.OUT_OF_BOUNDS, "scale must not be -0.0")
        if not isinstance(self.codes, bytes):
            raise MessageRejected(RejectReason.MALFORMED, "codes must be bytes")
        _check_uint("number of scalars", len(self.codes), MAX_SCALARS, minimum=1)
        _check_uint("compute_ms", self.compute_ms, MAX_UINT32)
        self._check_blocks()

    def _check_blocks(self) -> None:
        if not isinstance(self.block_counts, tuple):
            raise MessageRejected(RejectReason.MALFORMED, "block_counts must be a tuple")
        if self.codec == "zo":
            if self.block_counts:
                raise MessageRejected(RejectReason.MALFORMED, "zo contributions have no blocks")
            return
        _check_uint("number of blocks", len(self.block_counts), MAX_BLOCKS, minimum=1)
        for count in self.block_counts:
            _check_uint("block count", count, MAX_SCALARS)
        if sum(self.block_counts) != len(self.codes):
            raise MessageRejected(RejectReason.MALFORMED, "block counts must sum to #scalars")

    @property
    def author(self) -> PublicKey:
        return self.sender

    @property
    def scalars(self) -> int:
        """K: how many scalars (one byte each) it carries."""
        return len(self.codes)


@dataclass(frozen=True)
class CertEntry:
    """One included contribution of a certificate and its weight (ppb, at most 1.0)."""

    sender: PublicKey
    contribution_digest: Digest
    weight_ppb: int

    def __post_init__(self) -> None:
        _check_fixed_bytes("sender", self.sender, KEY_BYTES)
        _check_fixed_bytes("contribution_digest", self.contribution_digest, HASH_BYTES)
        _check_uint("weight_ppb", self.weight_ppb, WEIGHT_ONE_PPB)


@dataclass(frozen=True)
class RoundCertificate:
    """The leader's statement of which contributions round `round_index` applies, in order,
    and the model hash that results. A contribution digest appears at most once."""

    TYPE_NAME: ClassVar[str] = "round-certificate"

    network_id: str
    round_index: int
    leader: PublicKey
    sequence: int
    prev_model_hash: ModelHash
    entries: tuple[CertEntry, ...]
    new_model_hash: ModelHash

    def __post_init__(self) -> None:
        _check_header(self.network_id, self.round_index, self.sequence)
        _check_fixed_bytes("leader", self.leader, KEY_BYTES)
        _check_fixed_bytes("prev_model_hash", self.prev_model_hash, HASH_BYTES)
        _check_fixed_bytes("new_model_hash", self.new_model_hash, HASH_BYTES)
        if not isinstance(self.entries, tuple) or not all(
            isinstance(entry, CertEntry) for entry in self.entries
        ):
            raise MessageRejected(RejectReason.MALFORMED, "entries must be a tuple of CertEntry")
        _check_uint("number of entries", len(self.entries), MAX_CERT_ENTRIES)
        digests = {entry.contribution_digest for entry in self.entries}
        if len(digests) != len(self.entries):
            raise MessageRejected(RejectReason.MALFORMED, "a contribution is certified twice")

    @property
    def author(self) -> PublicKey:
        return self.leader


@dataclass(frozen=True)
class CertificateEndorsement:
    """A validator's vote on a certificate (by digest): co-sign (`approve`) or dispute."""

    TYPE_NAME: ClassVar[str] = "certificate-endorsement"

    network_id: str
    round_index: int
    validator: PublicKey
    sequence: int
    certificate_digest: Digest
    approve: bool
    reason: str

    def __post_init__(self) -> None:
        _check_header(self.network_id, self.round_index, self.sequence)
        _check_fixed_bytes("validator", self.validator, KEY_BYTES)
        _check_fixed_bytes("certificate_digest", self.certificate_digest, HASH_BYTES)
        if not isinstance(self.approve, bool):
            raise MessageRejected(RejectReason.MALFORMED, "approve must be a bool")
        _check_text("reason", self.reason, MAX_REASON_CHARS)

    @property
    def author(self) -> PublicKey:
        return self.validator


@dataclass(frozen=True)
class ScoreReceipt:
    """A validator's published score of one miner in one round.

    `verified` is None when no scalar of the contribution was re-computed. Loss deltas and
    influence are signed and finite; `rating_sigma` is non-negative.
    """

    TYPE_NAME: ClassVar[str] = "score-receipt"

    network_id: str
    round_index: int
    validator: PublicKey
    sequence: int
    miner: PublicKey
    filters_passed: bool
    verified: bool | None
    loss_delta_own: float
    loss_delta_random: float
    influence: float
    rating_mu: float
    rating_sigma: float
    weight_ppb: int
    reason: str

    def __post_init__(self) -> None:
        _check_header(self.network_id, self.round_index, self.sequence)
        _check_fixed_bytes("validator", self.validator, KEY_BYTES)
        _check_fixed_bytes("miner", self.miner, KEY_BYTES)
        if not isinstance(self.filters_passed, bool):
            raise MessageRejected(RejectReason.MALFORMED, "filters_passed must be a bool")
        if self.verified is not None and not isinstance(self.verified, bool):
            raise MessageRejected(RejectReason.MALFORMED, "verified must be a bool or None")
        for name in ("loss_delta_own", "loss_delta_random", "influence", "rating_mu"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        object.__setattr__(
            self, "rating_sigma", _finite("rating_sigma", self.rating_sigma, minimum=0.0)
        )
        _check_uint("weight_ppb", self.weight_ppb, WEIGHT_ONE_PPB)
        _check_text("reason", self.reason, MAX_REASON_CHARS)

    @property
    def author(self) -> PublicKey:
        return self.validator


Message = Contribution | RoundCertificate | CertificateEndorsement | ScoreReceipt
MESSAGE_TYPES: tuple[type[Message], ...] = (
    Contribution,
    RoundCertificate,
    CertificateEndorsement,
    ScoreReceipt,
)
