"""Who certifies a round: a stake-weighted draw from the round beacon, without replacement.

``select_leader`` is a pure function of (beacon, validator stakes, attempt): every validator
computes the same leader, nobody can steer it (the beacon depends on the network and the round
only, never on a certificate, so a leader cannot grind the next election), and over many rounds
each validator leads in proportion to its stake. ``attempt`` names the fallback leaders to use,
in turn, when the first does not certify in time.

The draw: validators sorted by public key (so the input order does not matter). Attempt k takes
a 256-bit keyed hash of (beacon, k) reduced modulo the stake of the validators that attempts
0 .. k - 1 did not pick, and picks the one whose cumulative stake interval (among those) holds
it. Drawing without replacement means the first min(LEADER_ATTEMPTS, n) attempts name distinct
validators, so one silent validator, however large its stake, stalls a round for one attempt
at most; once all n validators are used, attempt k repeats attempt k mod n. Attempt 0 is the
plain stake-weighted draw. The modulo bias is at most total / 2**256: nil for any real stake.

Validators and followers share this one rule: a leader certifies only under an attempt below
``LEADER_ATTEMPTS``, and a follower accepts a round's certificate only from one of those leaders.
Validators move to the next attempt each clock round a round stays uncertified
(``leader_attempt``), cycling through those leaders.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from protocol.domain_types import Beacon, PublicKey, Wei
from protocol.errors import ConsensusError
from protocol.randomness import keyed_hash, round_beacon

_PERSON_LEADER = b"ss:leader"
KEY_BYTES = 32
LEADER_ATTEMPTS = 8
"""Leaders a round may be certified by: the elected one and its fallbacks, cycled in turn."""

StakeTable = Iterable[tuple[PublicKey, Wei]]
"""(validator public key, stake in wei) pairs."""


def canonical_stakes(stakes: StakeTable) -> list[tuple[PublicKey, Wei]]:
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


def _check_beacon_and_count(beacon: bytes, count: int, name: str) -> None:
    if not isinstance(beacon, bytes | bytearray) or len(beacon) != 32:
        raise ConsensusError("the beacon must be 32 bytes")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConsensusError(f"{name} must be an integer >= 0, got {count!r}")


def leader_sequence(beacon: Beacon, stakes: StakeTable, count: int) -> list[PublicKey]:
    """The leaders of attempts 0 .. count - 1 for n validators (count <= n: all distinct)."""
    table = canonical_stakes(stakes)
    if not table:
        raise ConsensusError("no validator holds stake")
    _check_beacon_and_count(beacon, count, "count")
    remaining = list(table)
    picks: list[PublicKey] = []
    for attempt in range(min(count, len(table))):
        total = sum(stake for _, stake in remaining)
        draw = keyed_hash(beacon, _PERSON_LEADER, struct.pack("<Q", attempt), size=32)
        point = int.from_bytes(draw, "little") % total
        for index, (key, stake) in enumerate(remaining):
            if point < stake:
                picks.append(key)
                del remaining[index]
                break
            point -= stake
    return [picks[k % len(picks)] for k in range(count)]


def select_leader(beacon: Beacon, stakes: StakeTable, attempt: int = 0) -> PublicKey:
    """The public key of the round's leader (``attempt`` > 0: the fallbacks, in order)."""
    _check_beacon_and_count(beacon, attempt, "attempt")
    table = canonical_stakes(stakes)
    if not table:
        raise ConsensusError("no validator holds stake")
    return leader_sequence(beacon, table, attempt % len(table) + 1)[-1]


def elected_leaders(
    beacon: Beacon, stakes: StakeTable, attempts: int = LEADER_ATTEMPTS
) -> frozenset[PublicKey]:
    """The keys allowed to certify the round of ``beacon``: attempts 0 .. attempts - 1."""
    return frozenset(leader_sequence(beacon, stakes, attempts))


def leader_attempt(clock_round: int, round_index: int) -> int:
    """The fallback attempt in force for `round_index` during `clock_round`."""
    return max(0, clock_round - round_index) % LEADER_ATTEMPTS


def leader_for(
    network_id: str, round_index: int, clock_round: int, validators: StakeTable
) -> PublicKey:
    """The public key of the validator that certifies `round_index` during `clock_round`."""
    beacon = round_beacon(network_id, round_index)
    return select_leader(beacon, validators, leader_attempt(clock_round, round_index))
