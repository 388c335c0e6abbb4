"""Who certifies a round: a stake-weighted draw from the round beacon.

``select_leader`` is a pure function of (beacon, validator stakes, attempt): every validator
computes the same leader, nobody can steer it (the beacon derives from the previous certified
model hash), and over many rounds each validator leads in proportion to its stake. ``attempt``
names the fallback leaders to use, in turn, when the first does not certify in time.

The draw: validators sorted by public key (so the input order does not matter), a 256-bit keyed
hash of the beacon reduced modulo the total stake, and the validator whose cumulative stake
interval contains it. The modulo bias is at most total / 2**256: nil for any real stake.

Validators and followers share this one rule: a leader certifies only under an attempt below
``LEADER_ATTEMPTS``, and a follower accepts a round's certificate only from one of those leaders.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from protocol.errors import ConsensusError
from protocol.randomness import keyed_hash

_PERSON_LEADER = b"ss:leader"
KEY_BYTES = 32
LEADER_ATTEMPTS = 8
"""Leaders a round may be certified by: the elected one and its fallbacks, cycled in turn."""

StakeTable = Iterable[tuple[bytes, int]]
"""(validator public key, stake in integer units) pairs."""


def canonical_stakes(stakes: StakeTable) -> list[tuple[bytes, int]]:
    """Stakes sorted by key, zero stakes dropped; ConsensusError on a malformed table."""
    table = list(stakes)
    keys = [key for key, _ in table]
    if len(set(keys)) != len(keys):
        raise ConsensusError("a validator appears twice in the stake table")
    for key, stake in table:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ConsensusError("validator keys must be 32-byte public keys")
        if isinstance(stake, bool) or not isinstance(stake, int) or stake < 0:
            raise ConsensusError(f"stake must be a non-negative integer, got {stake!r}")
    return sorted((key, stake) for key, stake in table if stake > 0)


def select_leader(beacon: bytes, stakes: StakeTable, attempt: int = 0) -> bytes:
    """The public key of the round's leader (``attempt`` > 0: the fallbacks, in order)."""
    table = canonical_stakes(stakes)
    total = sum(stake for _, stake in table)
    if total == 0:
        raise ConsensusError("no validator holds stake")
    if len(beacon) != 32 or attempt < 0:
        raise ConsensusError("need a 32-byte beacon and a non-negative attempt")
    draw = keyed_hash(beacon, _PERSON_LEADER, struct.pack("<Q", attempt), size=32)
    point = int.from_bytes(draw, "little") % total
    for key, stake in table:
        if point < stake:
            return key
        point -= stake
    raise AssertionError("unreachable: the point lies below the total stake")


def elected_leaders(
    beacon: bytes, stakes: StakeTable, attempts: int = LEADER_ATTEMPTS
) -> frozenset[bytes]:
    """The keys allowed to certify the round of ``beacon``: attempts 0 .. attempts - 1."""
    table = canonical_stakes(stakes)
    return frozenset(select_leader(beacon, table, attempt) for attempt in range(attempts))
