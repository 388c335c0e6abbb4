"""The model hash: SHA-256 over a canonical serialization of named tensors (a consensus rule).

Serialization, in the given order, after the domain tag ``b"seedswarm/model-hash/v1\\0"``
and the tensor count (u64), for each tensor:

    u32 len(name) | name (UTF-8) | u32 len(dtype) | dtype name (e.g. b"float32")
    | u32 ndim | u64 each dimension | u64 len(data) | data

All integers are little-endian; ``data`` is the tensor's contiguous little-endian bytes (moved
to the CPU first). Length prefixes make the encoding injective.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import torch

from protocol.domain_types import ModelHash
from protocol.gaussian import tensor_le_bytes

DOMAIN = b"seedswarm/model-hash/v1\0"


def _dtype_name(dtype: torch.dtype) -> bytes:
    return str(dtype).removeprefix("torch.").encode("ascii")


def model_hash(named: Sequence[tuple[str, torch.Tensor]]) -> ModelHash:
    """32-byte SHA-256 of the names, dtypes, shapes and bytes of ``named``, in order."""
    h = hashlib.sha256(DOMAIN)
    h.update(struct.pack("<Q", len(named)))
    for name, tensor in named:
        raw_name = name.encode("utf-8")
        dtype = _dtype_name(tensor.dtype)
        shape = tuple(int(d) for d in tensor.shape)
        h.update(struct.pack("<I", len(raw_name)) + raw_name)
        h.update(struct.pack("<I", len(dtype)) + dtype)
        h.update(struct.pack(f"<I{len(shape)}Q", len(shape), *shape))
        data = tensor_le_bytes(tensor)
        h.update(struct.pack("<Q", len(data)))
        h.update(data)
    return ModelHash(h.digest())
