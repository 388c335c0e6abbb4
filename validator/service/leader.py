"""Who certifies the round a validator's replica is at, in the current clock round.

The choice is protocol.leader's stake-weighted draw from the round's beacon, so followers can
check it. Each clock round the round stays uncertified (its leader is silent) moves to the next
fallback attempt, cycling through the LEADER_ATTEMPTS leaders followers accept.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol.leader import LEADER_ATTEMPTS, select_leader
from protocol.randomness import round_beacon

Stakes = Sequence[tuple[bytes, int]]
"""(Ed25519 public key, stake) of every validator."""


def leader_attempt(clock_round: int, round_index: int) -> int:
    """The fallback attempt in force for `round_index` during `clock_round`."""
    return max(0, clock_round - round_index) % LEADER_ATTEMPTS


def leader_for(
    network_id: str,
    round_index: int,
    prev_model_hash: bytes,
    clock_round: int,
    validators: Stakes,
) -> bytes:
    """The public key of the validator that certifies `round_index` during `clock_round`."""
    beacon = round_beacon(network_id, round_index, prev_model_hash)
    return select_leader(beacon, validators, leader_attempt(clock_round, round_index))
