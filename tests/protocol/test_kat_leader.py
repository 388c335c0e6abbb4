"""Known answers: leader election (stake-weighted draws without replacement from the beacon).

Computed once and written down; a different value here means validators disagree on who may
certify a round. Validator keys are b"\\x01" * 32 ... (named by their first byte below). The
vectors were recorded again, with a plain re-implementation of the draw in hashlib, when the
beacon stopped depending on the previous certified model (docs/architecture.md, "Round beacon").
"""

from __future__ import annotations

from protocol.leader import elected_leaders, leader_for, leader_sequence, select_leader
from protocol.randomness import round_beacon

NET = "kat-net"
STAKES = [(bytes([i]) * 32, s) for i, s in [(4, 1), (2, 30), (1, 10), (3, 60)]]  # unsorted


def _names(keys: list[bytes]) -> list[int]:
    return [k[0] for k in keys]


def test_first_leader_of_sixteen_rounds() -> None:
    # attempt 0 for rounds 0..15 of kat-net (person ss:leader)
    leaders = [select_leader(round_beacon(NET, r), STAKES)[0] for r in range(16)]
    assert leaders == [3, 3, 3, 3, 3, 1, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2]


def test_fallback_sequence() -> None:
    # round 7: attempts 0..9, distinct for the first four, then cycling
    beacon = round_beacon(NET, 7)
    assert _names(leader_sequence(beacon, STAKES, 10)) == [3, 1, 2, 4, 3, 1, 2, 4, 3, 1]
    assert [select_leader(beacon, STAKES, a)[0] for a in range(6)] == [3, 1, 2, 4, 3, 1]
    assert sorted(_names(list(elected_leaders(beacon, STAKES)))) == [1, 2, 3, 4]
    # the leader in force during clock rounds 7..16 (one attempt more per clock round)
    assert [leader_for(NET, 7, c, STAKES)[0] for c in range(7, 17)] == [
        3, 1, 2, 4, 3, 1, 2, 4, 3, 1]


def test_stakes_beyond_64_bits() -> None:
    # three validators of about 1e24 units each: the 256-bit draw, reduced exactly
    big = [(b"\x09" * 32, 10**24), (b"\x08" * 32, 10**24 + 1), (b"\x07" * 32, 10**24 - 1)]
    sequences = [_names(leader_sequence(round_beacon(NET, r), big, 3)) for r in range(8)]
    assert sequences == [[9, 8, 7], [8, 9, 7], [9, 8, 7], [9, 7, 8], [8, 7, 9], [8, 9, 7],
                         [7, 8, 9], [7, 9, 8]]
