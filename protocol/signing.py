"""Signed envelopes: the only form in which messages travel.

    envelope := version:u8 (=1) | message (protocol.encoding) | signature:64

The signature is the message author's Ed25519 signature (the key named by the message's
`author` field: sender, leader or validator) over

    signed_bytes := domain | message,
    domain       := text("seedswarm/envelope/1") | text(network_id) | text(message type name)

so a signature made for one network or one message type never verifies for another. The
envelope's digest is SHA-256(signed_bytes): certificates refer to contributions by it and
replay protection deduplicates by it.

`open_envelope` checks the size before parsing anything and raises only MessageRejected,
whatever bytes it is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from protocol.domain_types import Digest, PublicKey
from protocol.encoding import MAX_MESSAGE_BYTES, Writer, decode, encode
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import SIGNATURE_BYTES, NodeKey, NodePublicKey
from protocol.messages import Message

ENVELOPE_VERSION = 1
PROTOCOL_DOMAIN = "seedswarm/envelope/1"
ENVELOPE_OVERHEAD = 1 + SIGNATURE_BYTES

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Signed(Generic[M]):
    """A verified message: its author's key, its digest, and the envelope it came in."""

    message: M
    signer: NodePublicKey
    digest: Digest
    envelope: bytes


def domain(network_id: str, type_name: str) -> bytes:
    """The prefix under which messages of one type on one network are signed."""
    w = Writer()
    w.text(PROTOCOL_DOMAIN)
    w.text(network_id)
    w.text(type_name)
    return w.getvalue()


def _signed_bytes(msg: Message, encoded: bytes) -> bytes:
    return domain(msg.network_id, msg.TYPE_NAME) + encoded


def message_digest(msg: Message) -> Digest:
    """The 32-byte digest of a message, as `open_envelope` reports it for its envelope."""
    return Digest(hashlib.sha256(_signed_bytes(msg, encode(msg))).digest())


def seal(msg: Message, key: NodeKey) -> bytes:
    """Sign `msg` with its author's key and wrap it in an envelope.

    Raises ValueError if `key` is not the author the message names: such an envelope would
    be rejected by every receiver.
    """
    if key.public.raw != msg.author:
        raise ValueError("the signing key is not the message's author")
    encoded = encode(msg)
    signature = key.sign(_signed_bytes(msg, encoded))
    envelope = bytes([ENVELOPE_VERSION]) + encoded + signature
    if len(envelope) > MAX_MESSAGE_BYTES:
        raise MessageRejected(RejectReason.OVERSIZED, f"envelope of {len(envelope)} bytes")
    return envelope


@overload
def open_envelope(
    raw: bytes | bytearray | memoryview, *, network_id: str, max_size: int = MAX_MESSAGE_BYTES
) -> Signed[Message]: ...


@overload
def open_envelope(
    raw: bytes | bytearray | memoryview,
    *,
    network_id: str,
    max_size: int = MAX_MESSAGE_BYTES,
    expect: type[M],
) -> Signed[M]: ...


def open_envelope(
    raw: bytes | bytearray | memoryview,
    *,
    network_id: str,
    max_size: int = MAX_MESSAGE_BYTES,
    expect: type[Any] | None = None,
) -> Signed[Any]:
    """Parse and verify an envelope for `network_id`; raises only MessageRejected.

    Order: size, envelope version, strict decode, expected type, network, signature.
    `expect` narrows the accepted message type (anything else: UNKNOWN_TYPE).
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MessageRejected(RejectReason.MALFORMED, "expected bytes")
    limit = min(max_size, MAX_MESSAGE_BYTES)
    if len(raw) > limit:
        raise MessageRejected(RejectReason.OVERSIZED, f"{len(raw)} > {limit} bytes")
    data = bytes(raw)
    if len(data) <= ENVELOPE_OVERHEAD:
        raise MessageRejected(RejectReason.MALFORMED, "envelope too short")
    if data[0] != ENVELOPE_VERSION:
        raise MessageRejected(RejectReason.UNSUPPORTED_VERSION, f"envelope version {data[0]}")
    encoded, signature = data[1:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
    msg = decode(encoded)
    if expect is not None and not isinstance(msg, expect):
        raise MessageRejected(RejectReason.UNKNOWN_TYPE, f"expected {expect.__name__}")
    if msg.network_id != network_id:
        raise MessageRejected(RejectReason.WRONG_NETWORK, f"network {msg.network_id!r}")
    signer = _public_key(msg.author)
    signed_bytes = _signed_bytes(msg, encoded)
    if not signer.verify(signature, signed_bytes):
        raise MessageRejected(RejectReason.BAD_SIGNATURE, f"from {signer.peer_id}")
    digest = Digest(hashlib.sha256(signed_bytes).digest())
    return Signed(message=msg, signer=signer, digest=digest, envelope=data)


def _public_key(raw: PublicKey) -> NodePublicKey:
    try:
        return NodePublicKey.from_bytes(raw)
    except ValueError:  # cannot happen for a decoded message (32 bytes); kept for safety
        raise MessageRejected(RejectReason.BAD_SIGNATURE, "invalid public key") from None


__all__ = [
    "ENVELOPE_VERSION",
    "PROTOCOL_DOMAIN",
    "Signed",
    "domain",
    "message_digest",
    "open_envelope",
    "seal",
]
