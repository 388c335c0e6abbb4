"""Who certifies a clock round: validators take turns in proportion to their stake.

The choice is a pure function of the round index and the validator set, so every node
computes the same leader without talking to anyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from protocol.errors import ConfigError

Stakes = Sequence[tuple[bytes, int]]
"""(Ed25519 public key, stake) of every validator."""


def leader_for(clock_round: int, validators: Stakes) -> bytes:
    """The public key of the validator that certifies `clock_round` (stake-weighted draw)."""
    ranked = sorted((key, stake) for key, stake in validators if stake > 0)
    if not ranked:
        raise ConfigError("no validator with positive stake")
    total = sum(stake for _, stake in ranked)
    draw = hashlib.blake2b(
        clock_round.to_bytes(8, "big"), digest_size=16, person=b"ss:leader"
    ).digest()
    point = int.from_bytes(draw, "big") % total
    for key, stake in ranked:
        if point < stake:
            return key
        point -= stake
    raise AssertionError("unreachable: the draw lies below the total stake")
