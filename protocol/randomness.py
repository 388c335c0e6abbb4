"""Round beacon, seed derivation and keyed sampling.

Every random choice the protocol makes is a keyed BLAKE2b of public round data, with one
personalization string per use, so that no two uses can collide and nobody can choose the
outcome: a miner's seeds depend on the round beacon, its public key, the round and the index,
and it controls none of them once it has registered.

The round beacon is a function of the network id and the round index only. It used to be keyed
by the previous certified model hash, which the round's leader sets by choosing which valid
contributions its certificate includes (any subset of up to G of them passes review), so a
leader could try certificate variants and sign the one whose next beacon elected it again or
favoured its miners. Nothing a leader, a miner or a validator signs enters the beacon now, so
there is nothing to grind; the price is that the schedule is public in advance
(docs/architecture.md, "Round beacon").

``KeyedPermutation`` is a pseudo-random permutation of ``range(n)`` evaluated one index at a
time (a balanced Feistel network with cycle walking), so that data assignment and verification
samples need neither a shuffled list nor a stateful generator.
"""

from __future__ import annotations

import hashlib
import struct

from protocol.domain_types import Beacon, PublicKey
from protocol.errors import SeedswarmError

SEED_BITS = 63
_U64_MAX = 2**64 - 1

_PERSON_BEACON = b"ss:round-beacon"
_PERSON_SEED = b"ss:seed"
_PERSON_VERIFY_KEY = b"ss:verify-key"
_PERSON_VERIFY_PICK = b"ss:verify-pick"
_PERSON_FEISTEL = b"ss:feistel"

_FEISTEL_ROUNDS = 6


class RandomnessError(SeedswarmError, ValueError):
    """An input to a beacon, seed or sample derivation is out of its domain."""


def _u64(value: int, name: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64_MAX:
        raise RandomnessError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    return struct.pack("<Q", value)


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RandomnessError(f"{name} must be an integer >= 0, got {value!r}")


def _framed(*parts: bytes) -> bytes:
    # Length prefixes make the concatenation injective, so distinct inputs never hash alike.
    return b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def _check_len(value: bytes, length: int, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        raise RandomnessError(f"{name} must be {length} bytes")
    return bytes(value)


def _check_key(key: bytes, name: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or not 16 <= len(key) <= 64:
        raise RandomnessError(f"{name} must be 16 to 64 bytes")
    return bytes(key)


def keyed_hash(key: bytes, person: bytes, data: bytes, size: int = 32) -> bytes:
    """BLAKE2b of ``data`` under ``key`` with the domain string ``person`` (at most 16 bytes)."""
    return hashlib.blake2b(data, digest_size=size, key=key, person=person).digest()


def round_beacon(network_id: str, round_index: int) -> Beacon:
    """The 32-byte randomness of round ``round_index`` of ``network_id``.

    Deliberately independent of every certificate: no leader can pick among values of it.
    """
    data = _framed(network_id.encode("utf-8"), _u64(round_index, "round_index"))
    return Beacon(keyed_hash(b"", _PERSON_BEACON, data))


def derive_seed(
    network_id: str, beacon: Beacon, miner: PublicKey, round_index: int, index: int
) -> int:
    """Seed number ``index`` of ``miner`` (32-byte Ed25519 public key) in a round; in [0, 2**63)."""
    key = _check_len(beacon, 32, "beacon")
    data = _framed(
        network_id.encode("utf-8"),
        _check_len(miner, 32, "miner"),
        _u64(round_index, "round_index"),
        _u64(index, "index"),
    )
    return int.from_bytes(keyed_hash(key, _PERSON_SEED, data, size=8), "little") >> 1


def contribution_seeds(
    network_id: str, beacon: Beacon, miner: PublicKey, round_index: int, count: int
) -> list[int]:
    """The seeds of indices ``0 .. count-1`` of ``miner``'s contribution in a round."""
    _check_count(count, "count")
    return [derive_seed(network_id, beacon, miner, round_index, i) for i in range(count)]


def validator_sample_key(secret: bytes, round_index: int, miner: PublicKey) -> bytes:
    """A validator's private 32-byte key for choosing which of ``miner``'s scalars to verify.

    It depends on the validator's ``secret`` (16-64 bytes), so a miner cannot know in advance
    which scalars will be checked and must compute all of them honestly.
    """
    data = _framed(_u64(round_index, "round_index"), _check_len(miner, 32, "miner"))
    return keyed_hash(_check_key(secret, "secret"), _PERSON_VERIFY_KEY, data)


def verification_sample(key: bytes, count: int, k: int) -> list[int]:
    """``min(k, count)`` distinct indices in ``range(count)``, sorted, chosen by ``key``."""
    _check_count(count, "count")
    _check_count(k, "k")
    perm = KeyedPermutation(keyed_hash(_check_key(key, "key"), _PERSON_VERIFY_PICK, b""), count)
    return sorted(perm(j) for j in range(min(k, count)))


class KeyedPermutation:
    """A pseudo-random bijection of ``range(size)`` chosen by a 16-64 byte ``key``.

    A balanced Feistel network on the smallest even bit width covering ``size`` is a
    permutation of its power-of-two domain for any round function; re-encrypting until the
    value lands below ``size`` (cycle walking) restricts it to a permutation of ``range(size)``.
    The domain is less than 4x ``size``, so a lookup costs a few hashes on average.
    """

    def __init__(self, key: bytes, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _U64_MAX:
            raise RandomnessError(f"size must be an integer in [0, 2**64), got {size!r}")
        self.size = size
        # Half of the smallest even width covering size - 1 (sizes 0 and 1 need one bit).
        self._half = max(1, ((size - 1).bit_length() + 1) // 2)
        self._mask = (1 << self._half) - 1
        self._base = hashlib.blake2b(
            digest_size=8, key=_check_key(key, "key"), person=_PERSON_FEISTEL
        )

    def _round(self, r: int, half: int) -> int:
        h = self._base.copy()
        h.update(struct.pack("<BQ", r, half))
        return int.from_bytes(h.digest(), "little") & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for r in range(_FEISTEL_ROUNDS):
            left, right = right, left ^ self._round(r, right)
        return (left << self._half) | right

    def __call__(self, index: int) -> int:
        """The image of ``index`` (``0 <= index < size``)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise RandomnessError(f"index {index} out of range({self.size})")
        x = self._encrypt(index)
        while x >= self.size:
            x = self._encrypt(x)
        return x
