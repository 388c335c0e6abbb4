"""Who certifies a round: the rule lives in protocol.leader (followers check it too).

Re-exported here so validator code and tests keep one import path.
"""

from __future__ import annotations

from protocol.leader import (
    KEY_BYTES,
    LEADER_ATTEMPTS,
    StakeTable,
    canonical_stakes,
    elected_leaders,
    select_leader,
)

__all__ = [
    "KEY_BYTES",
    "LEADER_ATTEMPTS",
    "StakeTable",
    "canonical_stakes",
    "elected_leaders",
    "select_leader",
]
