"""Nodes serve the genesis checkpoint by its model hash; a joiner fetches and verifies it.

A joiner holds only the network file, which names the genesis model by hash. Every running node
keeps its own copy of the genesis checkpoint and answers `GENESIS_PROTOCOL` requests for it in
chunks (a checkpoint can exceed one transport message). The joiner asks its peers in turn and
keeps the first download that `verify` accepts (the caller loads it and checks the model
hash), so a peer serving anything else costs one download, never a wrong model.

Request: 32-byte model hash, 8-byte offset (big-endian). Answer: 8-byte total size, then the
bytes from the offset (at most `CHUNK_BYTES`); total 0 means "not the genesis I serve".
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from adapters.transport.base import Handler, Request, Transport, TransportError
from protocol.domain_types import ModelHash
from protocol.errors import ConfigError, MessageRejected, RejectReason

GENESIS_PROTOCOL = "seedswarm/genesis/1"
CHUNK_BYTES = 512 * 1024
"""Bytes per answer: well under a transport message (seedswarm.launch uses 1 MiB)."""
MAX_CHECKPOINT_BYTES = 8 << 30
_REQUEST = struct.Struct(">32sQ")
_SIZE = struct.Struct(">Q")

_log = logging.getLogger("runtime.genesis_exchange")


def encode_request(model_hash: bytes, offset: int) -> bytes:
    return _REQUEST.pack(model_hash, offset)


def decode_request(data: bytes) -> tuple[bytes, int]:
    if len(data) != _REQUEST.size:
        raise MessageRejected(RejectReason.MALFORMED, "genesis request of the wrong size")
    model_hash, offset = _REQUEST.unpack(data)
    return model_hash, offset


def genesis_handler(model_hash: ModelHash, path: Path) -> Handler:
    """Answer requests for `model_hash` with chunks of the checkpoint at `path`."""

    def read(offset: int) -> bytes:
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(min(offset, size))
                return _SIZE.pack(size) + handle.read(CHUNK_BYTES)
        except FileNotFoundError:
            return _SIZE.pack(0)

    async def answer(request: Request) -> bytes:
        wanted, offset = decode_request(request.data)
        if wanted != model_hash:
            return _SIZE.pack(0)
        return await asyncio.to_thread(read, offset)

    return answer


async def fetch_genesis(
    transport: Transport, peers: Sequence[str], model_hash: ModelHash, dest: Path,
    verify: Callable[[Path], Awaitable[bool]], *, timeout_s: float,
) -> Path:
    """Download the genesis checkpoint into `dest` from the first of `peers` whose copy
    `verify` accepts; ConfigError naming what was tried when none serves it."""
    tried: list[str] = []
    for peer in peers:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            await _download(transport, peer, model_hash, tmp, timeout_s)
        except (TransportError, MessageRejected) as exc:
            tried.append(f"{peer[:16]}…: {exc}")
            tmp.unlink(missing_ok=True)
            continue
        if await verify(tmp):
            os.replace(tmp, dest)
            _log.info("genesis checkpoint fetched from %s", peer)
            return dest
        tried.append(f"{peer[:16]}…: served a checkpoint of another model")
        tmp.unlink(missing_ok=True)
    raise ConfigError(
        "cannot get the genesis checkpoint from any peer ("
        + ("; ".join(tried) or "no peers known") + "): check the network's bootstrap peers or "
        "broker, or copy the checkpoint next to network.toml")


async def _download(transport: Transport, peer: str, model_hash: bytes, tmp: Path,
                    timeout_s: float) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        offset, total = 0, None
        while total is None or offset < total:
            answer = await transport.request(peer, GENESIS_PROTOCOL,
                                             encode_request(model_hash, offset), timeout=timeout_s)
            if len(answer) < _SIZE.size:
                raise MessageRejected(RejectReason.MALFORMED, "short genesis answer")
            (size,) = _SIZE.unpack_from(answer)
            chunk = answer[_SIZE.size:]
            if size == 0:
                raise MessageRejected(RejectReason.OUT_OF_BOUNDS, "peer does not serve it")
            if total is None:
                if size > MAX_CHECKPOINT_BYTES:
                    raise MessageRejected(RejectReason.OVERSIZED, f"{size} bytes")
                total = size
            if size != total or not chunk or offset + len(chunk) > total:
                raise MessageRejected(RejectReason.MALFORMED, "inconsistent genesis chunks")
            out.write(chunk)
            offset += len(chunk)
        out.flush()
        os.fsync(out.fileno())
