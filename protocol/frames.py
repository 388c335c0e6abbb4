"""Length-prefixed frames: how a bundle, a log entry or a proof packs several envelopes.

    frames := count:u32 | (length:u32 | bytes)*
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from protocol.errors import MessageRejected, RejectReason

_U32 = struct.Struct(">I")
MAX_FRAMES = 4096


def encode_frames(parts: Sequence[bytes]) -> bytes:
    """Length-prefixed concatenation of `parts`."""
    out = [_U32.pack(len(parts))]
    for part in parts:
        out.append(_U32.pack(len(part)))
        out.append(part)
    return b"".join(out)


def decode_frames(raw: bytes, *, max_frames: int = MAX_FRAMES) -> list[bytes]:
    """Inverse of `encode_frames`; MessageRejected(MALFORMED) on any inconsistency."""
    if len(raw) < _U32.size:
        raise MessageRejected(RejectReason.MALFORMED, "frames: truncated count")
    (count,) = _U32.unpack_from(raw, 0)
    if count > max_frames:
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS, f"{count} frames > {max_frames}")
    offset, parts = _U32.size, []
    for _ in range(count):
        if offset + _U32.size > len(raw):
            raise MessageRejected(RejectReason.MALFORMED, "frames: truncated length")
        (length,) = _U32.unpack_from(raw, offset)
        offset += _U32.size
        if offset + length > len(raw):
            raise MessageRejected(RejectReason.MALFORMED, "frames: truncated frame")
        parts.append(raw[offset : offset + length])
        offset += length
    if offset != len(raw):
        raise MessageRejected(RejectReason.MALFORMED, "frames: trailing bytes")
    return parts
