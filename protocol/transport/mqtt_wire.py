"""Envelopes the MQTT transport wraps around payloads.

MQTT carries no sender identity, no message id and no request/response pairing (in 3.1.1),
so each payload travels in a small binary envelope (integers big-endian):

    header   = b"SW" | version u8 | kind u8
    PUBLISH  = header | session u64 | seq u64 | sender | data
    REQUEST  = header | request id u64 | sender | protocol | data
    RESPONSE = header | request id u64 | status u8 | data

`sender` and `protocol` are u8-length-prefixed ASCII. `session` is random per transport start
and `seq` counts its publishes, so (sender, session, seq) names a message uniquely and QoS 1
redeliveries can be recognised.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from protocol.transport.framing import ResponseStatus

_MAGIC = b"SW"
_VERSION = 1
_HEADER = struct.Struct(">2sBB")
_U64 = struct.Struct(">Q")
_U8 = struct.Struct(">B")


class MalformedEnvelope(ValueError):
    """Bytes that are not a valid envelope of this version."""


class Kind(enum.IntEnum):
    PUBLISH = 1
    REQUEST = 2
    RESPONSE = 3


@dataclass(frozen=True)
class PublishEnvelope:
    session: int
    seq: int
    sender: str
    data: bytes


@dataclass(frozen=True)
class RequestEnvelope:
    request_id: int
    sender: str
    protocol: str
    data: bytes


@dataclass(frozen=True)
class ResponseEnvelope:
    request_id: int
    status: ResponseStatus
    data: bytes


Envelope = PublishEnvelope | RequestEnvelope | ResponseEnvelope


def encode(envelope: Envelope) -> bytes:
    """Serialize one envelope."""
    if isinstance(envelope, PublishEnvelope):
        return b"".join(
            [
                _HEADER.pack(_MAGIC, _VERSION, Kind.PUBLISH),
                _U64.pack(envelope.session),
                _U64.pack(envelope.seq),
                _short_text(envelope.sender),
                envelope.data,
            ]
        )
    if isinstance(envelope, RequestEnvelope):
        return b"".join(
            [
                _HEADER.pack(_MAGIC, _VERSION, Kind.REQUEST),
                _U64.pack(envelope.request_id),
                _short_text(envelope.sender),
                _short_text(envelope.protocol),
                envelope.data,
            ]
        )
    return b"".join(
        [
            _HEADER.pack(_MAGIC, _VERSION, Kind.RESPONSE),
            _U64.pack(envelope.request_id),
            _U8.pack(envelope.status),
            envelope.data,
        ]
    )


def decode(raw: bytes) -> Envelope:
    """Parse one envelope; MalformedEnvelope for anything else."""
    reader = _Reader(raw)
    magic, version, kind = reader.take(len(_MAGIC)), reader.u8(), reader.u8()
    if magic != _MAGIC or version != _VERSION:
        raise MalformedEnvelope("unknown magic or version")
    if kind == Kind.PUBLISH:
        session, seq = reader.u64(), reader.u64()
        return PublishEnvelope(session, seq, reader.short_text(), reader.rest())
    if kind == Kind.REQUEST:
        request_id = reader.u64()
        sender = reader.short_text()
        return RequestEnvelope(request_id, sender, reader.short_text(), reader.rest())
    if kind == Kind.RESPONSE:
        request_id = reader.u64()
        raw_status = reader.u8()
        try:
            status = ResponseStatus(raw_status)
        except ValueError:
            raise MalformedEnvelope(f"unknown response status {raw_status}") from None
        return ResponseEnvelope(request_id, status, reader.rest())
    raise MalformedEnvelope(f"unknown envelope kind {kind}")


def _short_text(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > 255:
        raise ValueError("envelope text fields hold at most 255 bytes")
    return _U8.pack(len(raw)) + raw


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._offset = 0

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._raw):
            raise MalformedEnvelope("truncated envelope")
        chunk = self._raw[self._offset : end]
        self._offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(_U64.size))[0]
        return value

    def short_text(self) -> str:
        raw = self.take(self.u8())
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedEnvelope("text field is not ASCII") from None

    def rest(self) -> bytes:
        return self._raw[self._offset :]
