"""Length-prefixed frames for direct request/response exchanges over a byte stream.

request  = u32 length | payload
response = u8 status  | u32 length | payload        (all integers big-endian)

The reader learns a frame's length before its body, so an oversized frame is refused without
buffering it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Awaitable, Callable

_LENGTH = struct.Struct(">I")
_STATUS = struct.Struct(">B")

ReadExactly = Callable[[int], Awaitable[bytes]]


class ResponseStatus(enum.IntEnum):
    """Outcome of a direct request, as carried on the wire."""

    OK = 0
    UNKNOWN_PROTOCOL = 1
    TOO_LARGE = 2
    HANDLER_ERROR = 3


class FrameTooLarge(ValueError):
    """A frame announced more bytes than the reader accepts."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit")


def encode_request(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def encode_response(status: ResponseStatus, payload: bytes) -> bytes:
    return _STATUS.pack(status) + _LENGTH.pack(len(payload)) + payload


async def read_request(read_exactly: ReadExactly, limit: int) -> bytes:
    """Read one request frame; FrameTooLarge if it announces more than `limit` bytes."""
    return await _read_body(read_exactly, limit)


async def read_response(read_exactly: ReadExactly, limit: int) -> tuple[ResponseStatus, bytes]:
    """Read one response frame; ValueError on an unknown status."""
    (raw_status,) = _STATUS.unpack(await read_exactly(_STATUS.size))
    status = ResponseStatus(raw_status)
    return status, await _read_body(read_exactly, limit)


async def _read_body(read_exactly: ReadExactly, limit: int) -> bytes:
    (length,) = _LENGTH.unpack(await read_exactly(_LENGTH.size))
    if length > limit:
        raise FrameTooLarge(length, limit)
    return await read_exactly(length) if length else b""
