"""Canonical binary encoding of protocol messages.

Every valid message has exactly one encoding, and `decode` accepts exactly those bytes:

    message  := version:u8 (=1) | type:u8 | body
    integers := unsigned, big-endian, fixed width per field (u8/u16/u32/u64)
    hash/key := 32 raw bytes, no prefix
    bytes    := length:u16 | raw            string := length (u8 or u16) | UTF-8 (strict)
    float    := IEEE-754 binary64, big-endian; NaN and infinities are rejected
    bool     := 0x00 | 0x01                 optional bool := 0x00 false | 0x01 true | 0x02 none
    tuple    := count:u16 | items
    enum     := u8 index into a fixed name table (messages.CODECS, messages.DIRECTIONS)

Fields follow the order below for each type; nothing optional, nothing trailing. Floats are
binary64 so that a decoded value is bit-identical to the sender's, which every replica applies.

Decoding errors map to reasons: too long -> OVERSIZED; unknown version -> UNSUPPORTED_VERSION;
unknown type -> UNKNOWN_TYPE; a length prefix or value beyond its bound -> OUT_OF_BOUNDS;
truncation, trailing bytes, bad UTF-8, non-canonical bool/enum, NaN -> MALFORMED.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.messages import (
    CODECS,
    DIRECTIONS,
    HASH_BYTES,
    KEY_BYTES,
    MAX_BLOCKS,
    MAX_CERT_ENTRIES,
    MAX_REASON_CHARS,
    MAX_SCALARS,
    CertEntry,
    CertificateEndorsement,
    Contribution,
    Message,
    RoundCertificate,
    ScoreReceipt,
)

MAX_MESSAGE_BYTES = 64 * 1024
MESSAGE_VERSION = 1
MAX_NETWORK_ID_BYTES = 64
MAX_REASON_BYTES = 4 * MAX_REASON_CHARS  # UTF-8 needs at most 4 bytes per character

TYPE_TAGS: dict[type[Message], int] = {
    Contribution: 1,
    RoundCertificate: 2,
    CertificateEndorsement: 3,
    ScoreReceipt: 4,
}

_F64 = struct.Struct(">d")
_NONE_TAG = 2


class Writer:
    """Appends canonical primitives to a buffer."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def uint(self, value: int, width: int) -> None:
        self._buffer += value.to_bytes(width, "big")

    def fixed(self, value: bytes) -> None:
        self._buffer += value

    def blob(self, value: bytes, prefix_width: int = 2) -> None:
        self.uint(len(value), prefix_width)
        self._buffer += value

    def text(self, value: str, prefix_width: int = 2) -> None:
        self.blob(value.encode("utf-8"), prefix_width)

    def f64(self, value: float) -> None:
        self._buffer += _F64.pack(value)

    def boolean(self, value: bool) -> None:
        self.uint(1 if value else 0, 1)

    def optional_boolean(self, value: bool | None) -> None:
        self.uint(_NONE_TAG if value is None else int(value), 1)

    def getvalue(self) -> bytes:
        return bytes(self._buffer)


class Reader:
    """Consumes canonical primitives, raising MessageRejected on anything non-canonical."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise MessageRejected(RejectReason.MALFORMED, "truncated message")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def fixed(self, size: int) -> bytes:
        return self.take(size)

    def key(self) -> PublicKey:
        return PublicKey(self.take(KEY_BYTES))

    def model_hash(self) -> ModelHash:
        return ModelHash(self.take(HASH_BYTES))

    def digest(self) -> Digest:
        return Digest(self.take(HASH_BYTES))

    def count(self, width: int, limit: int, what: str) -> int:
        value = self.uint(width)
        if value > limit:
            raise MessageRejected(RejectReason.OUT_OF_BOUNDS, f"{what}: {value} > {limit}")
        return value

    def blob(self, limit: int, what: str, prefix_width: int = 2) -> bytes:
        return self.take(self.count(prefix_width, limit, what))

    def text(self, limit: int, what: str, prefix_width: int = 2) -> str:
        raw = self.blob(limit, what, prefix_width)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise MessageRejected(RejectReason.MALFORMED, f"{what}: invalid UTF-8") from None

    def f64(self, what: str) -> float:
        (value,) = _F64.unpack(self.take(_F64.size))
        if not math.isfinite(value):
            raise MessageRejected(RejectReason.MALFORMED, f"{what}: not a finite number")
        return float(value)

    def boolean(self, what: str) -> bool:
        value = self.uint(1)
        if value > 1:
            raise MessageRejected(RejectReason.MALFORMED, f"{what}: non-canonical bool")
        return value == 1

    def optional_boolean(self, what: str) -> bool | None:
        value = self.uint(1)
        if value > _NONE_TAG:
            raise MessageRejected(RejectReason.MALFORMED, f"{what}: non-canonical optional")
        return None if value == _NONE_TAG else value == 1

    def choice(self, names: tuple[str, ...], what: str) -> str:
        index = self.uint(1)
        if index >= len(names):
            raise MessageRejected(RejectReason.MALFORMED, f"{what}: unknown code {index}")
        return names[index]

    def finish(self) -> None:
        if self._offset != len(self._data):
            raise MessageRejected(RejectReason.MALFORMED, "trailing bytes after message")


def _write_header(
    w: Writer, network_id: str, round_index: int, author: PublicKey, seq: int
) -> None:
    w.text(network_id, prefix_width=1)
    w.uint(round_index, 8)
    w.fixed(author)
    w.uint(seq, 8)


def _read_header(r: Reader) -> tuple[str, int, PublicKey, int]:
    network_id = r.text(MAX_NETWORK_ID_BYTES, "network_id", prefix_width=1)
    return network_id, r.uint(8), r.key(), r.uint(8)


def _write_contribution(w: Writer, m: Contribution) -> None:
    _write_header(w, m.network_id, m.round_index, m.sender, m.sequence)
    w.fixed(m.base_model_hash)
    w.uint(CODECS.index(m.codec), 1)
    w.uint(DIRECTIONS.index(m.direction), 1)
    w.uint(m.rank, 2)
    w.uint(len(m.block_counts), 2)
    for count in m.block_counts:
        w.uint(count, 2)
    w.f64(m.scale)
    w.blob(m.codes)
    w.uint(m.compute_ms, 4)


def _read_contribution(r: Reader) -> Contribution:
    network_id, round_index, sender, sequence = _read_header(r)
    base_model_hash = r.model_hash()
    codec = r.choice(CODECS, "codec")
    direction = r.choice(DIRECTIONS, "direction")
    rank = r.uint(2)
    num_blocks = r.count(2, MAX_BLOCKS, "number of blocks")
    block_counts = tuple(r.uint(2) for _ in range(num_blocks))
    return Contribution(
        network_id=network_id,
        round_index=round_index,
        sender=sender,
        sequence=sequence,
        base_model_hash=base_model_hash,
        codec=codec,
        direction=direction,
        rank=rank,
        block_counts=block_counts,
        scale=r.f64("scale"),
        codes=r.blob(MAX_SCALARS, "number of scalars"),
        compute_ms=r.uint(4),
    )


def _write_certificate(w: Writer, m: RoundCertificate) -> None:
    _write_header(w, m.network_id, m.round_index, m.leader, m.sequence)
    w.fixed(m.prev_model_hash)
    w.uint(len(m.entries), 2)
    for entry in m.entries:
        w.fixed(entry.sender)
        w.fixed(entry.contribution_digest)
        w.uint(entry.weight_ppb, 4)
    w.fixed(m.new_model_hash)


def _read_certificate(r: Reader) -> RoundCertificate:
    network_id, round_index, leader, sequence = _read_header(r)
    prev_model_hash = r.model_hash()
    num_entries = r.count(2, MAX_CERT_ENTRIES, "number of entries")
    entries = tuple(
        CertEntry(
            sender=r.key(), contribution_digest=r.digest(), weight_ppb=r.uint(4)
        )
        for _ in range(num_entries)
    )
    return RoundCertificate(
        network_id=network_id,
        round_index=round_index,
        leader=leader,
        sequence=sequence,
        prev_model_hash=prev_model_hash,
        entries=entries,
        new_model_hash=r.model_hash(),
    )


def _write_endorsement(w: Writer, m: CertificateEndorsement) -> None:
    _write_header(w, m.network_id, m.round_index, m.validator, m.sequence)
    w.fixed(m.certificate_digest)
    w.boolean(m.approve)
    w.text(m.reason)


def _read_endorsement(r: Reader) -> CertificateEndorsement:
    network_id, round_index, validator, sequence = _read_header(r)
    return CertificateEndorsement(
        network_id=network_id,
        round_index=round_index,
        validator=validator,
        sequence=sequence,
        certificate_digest=r.digest(),
        approve=r.boolean("approve"),
        reason=r.text(MAX_REASON_BYTES, "reason"),
    )


def _write_receipt(w: Writer, m: ScoreReceipt) -> None:
    _write_header(w, m.network_id, m.round_index, m.validator, m.sequence)
    w.fixed(m.miner)
    w.boolean(m.filters_passed)
    w.optional_boolean(m.verified)
    for value in (m.loss_delta_own, m.loss_delta_random, m.influence, m.rating_mu, m.rating_sigma):
        w.f64(value)
    w.uint(m.weight_ppb, 4)
    w.text(m.reason)


def _read_receipt(r: Reader) -> ScoreReceipt:
    network_id, round_index, validator, sequence = _read_header(r)
    return ScoreReceipt(
        network_id=network_id,
        round_index=round_index,
        validator=validator,
        sequence=sequence,
        miner=r.key(),
        filters_passed=r.boolean("filters_passed"),
        verified=r.optional_boolean("verified"),
        loss_delta_own=r.f64("loss_delta_own"),
        loss_delta_random=r.f64("loss_delta_random"),
        influence=r.f64("influence"),
        rating_mu=r.f64("rating_mu"),
        rating_sigma=r.f64("rating_sigma"),
        weight_ppb=r.uint(4),
        reason=r.text(MAX_REASON_BYTES, "reason"),
    )


def _write_body(w: Writer, msg: Message) -> None:
    # A match on the closed union keeps mypy's exhaustiveness check.
    match msg:
        case Contribution():
            _write_contribution(w, msg)
        case RoundCertificate():
            _write_certificate(w, msg)
        case CertificateEndorsement():
            _write_endorsement(w, msg)
        case ScoreReceipt():
            _write_receipt(w, msg)


_READERS: dict[int, Callable[[Reader], Message]] = {
    TYPE_TAGS[Contribution]: _read_contribution,
    TYPE_TAGS[RoundCertificate]: _read_certificate,
    TYPE_TAGS[CertificateEndorsement]: _read_endorsement,
    TYPE_TAGS[ScoreReceipt]: _read_receipt,
}


def encode(msg: Message) -> bytes:
    """The canonical bytes of a message (version byte, type tag, fields)."""
    if type(msg) not in TYPE_TAGS:
        raise MessageRejected(RejectReason.UNKNOWN_TYPE, f"cannot encode {type(msg).__name__}")
    w = Writer()
    w.uint(MESSAGE_VERSION, 1)
    w.uint(TYPE_TAGS[type(msg)], 1)
    _write_body(w, msg)
    raw = w.getvalue()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageRejected(RejectReason.OVERSIZED, f"{len(raw)} > {MAX_MESSAGE_BYTES} bytes")
    return raw


def decode(raw: bytes | bytearray | memoryview) -> Message:
    """Parse canonical bytes strictly; raises only MessageRejected."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MessageRejected(RejectReason.MALFORMED, "expected bytes")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageRejected(RejectReason.OVERSIZED, f"{len(raw)} > {MAX_MESSAGE_BYTES} bytes")
    r = Reader(bytes(raw))
    version = r.uint(1)
    if version != MESSAGE_VERSION:
        raise MessageRejected(RejectReason.UNSUPPORTED_VERSION, f"message version {version}")
    tag = r.uint(1)
    reader = _READERS.get(tag)
    if reader is None:
        raise MessageRejected(RejectReason.UNKNOWN_TYPE, f"type tag {tag}")
    msg = reader(r)
    r.finish()
    return msg
