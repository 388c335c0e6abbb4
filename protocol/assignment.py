"""Deterministic data assignment.

In each round the training samples are shuffled by a keyed permutation derived from the round
beacon, and miner ``m`` trains on positions ``m*per_miner .. (m+1)*per_miner - 1`` of it.
Miners' sets are therefore disjoint by construction, nobody can steer their own data (the
beacon depends on the network and round only, not on anything a participant signs), and a
validator recomputes any miner's set from public data alone. The permutation is evaluated per
position, so the cost is ``per_miner`` lookups, not ``num_samples``.
"""

from __future__ import annotations

from protocol.domain_types import Beacon
from protocol.errors import ConfigError
from protocol.randomness import KeyedPermutation, keyed_hash

_PERSON_ASSIGN = b"ss:assign"
_PERSON_RANDOM_DATA = b"ss:random-data"


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def assign_samples(
    beacon: Beacon, num_samples: int, miner_index: int, per_miner: int
) -> list[int]:
    """The training-sample indices of miner ``miner_index`` in the round of ``beacon``.

    Raises ConfigError if ``(miner_index + 1) * per_miner > num_samples``.
    """
    _check_counts(num_samples=num_samples, miner_index=miner_index, per_miner=per_miner)
    start = miner_index * per_miner
    if start + per_miner > num_samples:
        raise ConfigError(
            f"miner {miner_index} needs samples up to {start + per_miner}, "
            f"but the task has only {num_samples}"
        )
    if not isinstance(beacon, bytes | bytearray) or len(beacon) != 32:
        raise ConfigError("beacon must be 32 bytes")
    perm = KeyedPermutation(keyed_hash(beacon, _PERSON_ASSIGN, b""), num_samples)
    return [perm(start + j) for j in range(per_miner)]


def random_samples(key: bytes, num_samples: int, count: int) -> list[int]:
    """``count`` distinct sample indices chosen by ``key`` (16-64 bytes; a validator's secret).

    Raises ConfigError if ``count > num_samples``.
    """
    _check_counts(num_samples=num_samples, count=count)
    if count > num_samples:
        raise ConfigError(f"cannot draw {count} distinct samples from {num_samples}")
    if not isinstance(key, bytes | bytearray) or not 16 <= len(key) <= 64:
        raise ConfigError("key must be 16 to 64 bytes")
    perm = KeyedPermutation(keyed_hash(key, _PERSON_RANDOM_DATA, b""), num_samples)
    return [perm(j) for j in range(count)]
